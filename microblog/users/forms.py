"""Validation of the account forms: the rules of DESIGN, with a message per field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from microblog.web.forms import has_forbidden_characters

USERNAME = re.compile(r"^[A-Za-z0-9_]{1,30}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 1024
DISPLAY_NAME_MAX, BIO_MAX = 50, 300


def username_error(username: str) -> str | None:
    if not username:
        return "Choose a username."
    if not USERNAME.match(username):
        return "Use 1 to 30 letters, digits or underscores."
    return None


def password_error(password: str) -> str | None:
    if len(password) < PASSWORD_MIN:
        return f"Use at least {PASSWORD_MIN} characters."
    if len(password) > PASSWORD_MAX:
        return f"Use at most {PASSWORD_MAX} characters."
    if has_forbidden_characters(password, multiline=False):
        return "Passwords cannot contain control characters."
    return None


@dataclass
class Credentials:
    """Sign-up and log-in both send a username and a password."""

    username: str
    password: str
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, form: Mapping[str, str], *, new_account: bool) -> Credentials:
        creds = cls(username=form.get("username", "").strip(), password=form.get("password", ""))
        if new_account:
            problems = {
                "username": username_error(creds.username),
                "password": password_error(creds.password),
            }
            creds.errors = {name: message for name, message in problems.items() if message}
        else:
            if not creds.username:
                creds.errors["username"] = "Enter your username."
            if not creds.password:
                creds.errors["password"] = "Enter your password."
        return creds


@dataclass
class Profile:
    display_name: str
    bio: str
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, form: Mapping[str, str]) -> Profile:
        profile = cls(
            display_name=form.get("display_name", "").strip(),
            bio=form.get("bio", "").strip().replace("\r\n", "\n"),
        )
        if len(profile.display_name) > DISPLAY_NAME_MAX:
            profile.errors["display_name"] = f"Use at most {DISPLAY_NAME_MAX} characters."
        elif has_forbidden_characters(profile.display_name, multiline=False):
            profile.errors["display_name"] = "Names cannot contain control characters."
        if len(profile.bio) > BIO_MAX:
            profile.errors["bio"] = f"Use at most {BIO_MAX} characters."
        elif has_forbidden_characters(profile.bio):
            profile.errors["bio"] = "The bio cannot contain control characters."
        return profile


@dataclass
class PasswordChange:
    current: str
    new: str
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, form: Mapping[str, str]) -> PasswordChange:
        change = cls(current=form.get("current_password", ""), new=form.get("new_password", ""))
        if not change.current:
            change.errors["current_password"] = "Enter your current password."
        if message := password_error(change.new):
            change.errors["new_password"] = message
        return change
