"""Validation of the account forms: the rules of DESIGN, with a message per field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from microblog.web.forms import has_forbidden_characters

USERNAME_MAX = 30
USERNAME = re.compile(rf"^[A-Za-z0-9_]{{1,{USERNAME_MAX}}}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 1024
DISPLAY_NAME_MAX, BIO_MAX = 50, 300


def username_error(username: str) -> str | None:
    """What is wrong with a new username: said differently from the field's hint, which already
    states the rule, so the message adds what this one breaks."""
    if not username:
        return "Choose a username."
    if len(username) > USERNAME_MAX:
        return f"That one is {len(username)} characters long; the limit is {USERNAME_MAX}."
    if not USERNAME.match(username):
        named = _and(_not_allowed(username))
        return f"{named[0].upper()}{named[1:]} cannot be part of a username."
    return None


def _not_allowed(username: str) -> list[str]:
    """The characters of a username that the rule refuses, named as a person would name them."""
    named: list[str] = []
    for character in username:
        if (character.isascii() and character.isalnum()) or character == "_":
            continue
        if character.isspace():
            name = "spaces"
        elif not character.isprintable():
            name = "invisible characters"
        else:
            name = f"“{character}”"
        if name not in named:
            named.append(name)
    return named


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def password_error(password: str) -> str | None:
    if not password:
        return "Choose a password."
    if len(password) < PASSWORD_MIN:
        count = "1 character" if len(password) == 1 else f"{len(password)} characters"
        return f"That one has only {count}; use at least {PASSWORD_MIN}."
    if len(password) > PASSWORD_MAX:
        return f"That one has {len(password)} characters; use at most {PASSWORD_MAX}."
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
