"""The pictures of a new post, as its form sends them: files `picture_1`..`picture_4`, each
described by the text field of the same number (`alt_1`..`alt_4`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from werkzeug.datastructures import FileStorage, MultiDict

from microblog.pictures import MAX_BYTES, Refused, check
from microblog.post_pictures.queries import Upload
from microblog.web.forms import has_forbidden_characters

MAX_PICTURES = 4
MAX_ALT = 1000
# A post's whole request: its pictures at their largest, and room for its text and fields.
MAX_POST_BYTES = MAX_PICTURES * MAX_BYTES + 64 * 1024
SLOTS = range(1, MAX_PICTURES + 1)
_FIELD = re.compile(r"picture_(\d+)")


@dataclass
class Pictures:
    uploads: list[Upload] = field(default_factory=list)
    # The alt text of each slot, as typed: a refused form shows it again (files cannot be).
    alts: dict[int, str] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def parse(cls, form: Mapping[str, str], files: MultiDict[str, FileStorage]) -> Pictures:
        pictures = cls(alts={slot: form.get(f"alt_{slot}", "").strip() for slot in SLOTS})
        sent = [(name, upload) for name, upload in files.items(multi=True) if upload.filename]
        if len(sent) > MAX_PICTURES or any(not _in_a_slot(name) for name, _ in sent):
            pictures.error = f"A post can have at most {MAX_PICTURES} pictures."
            return pictures
        for name, upload in sorted(sent, key=lambda item: int(item[0].split("_")[1])):
            slot = int(name.split("_")[1])
            alt = pictures.alts[slot]
            if not alt:
                pictures.error = (
                    f"Describe picture {slot} for those who cannot see it: its alt text "
                    "is required."
                )
            elif len(alt) > MAX_ALT:
                pictures.error = (
                    f"Alt text is at most {MAX_ALT} characters; that of picture {slot} has "
                    f"{len(alt)}."
                )
            elif has_forbidden_characters(alt):
                pictures.error = f"The alt text of picture {slot} has control characters."
            if pictures.error:
                return pictures
            pictures.uploads.append(Upload(upload.read(), alt))
        return pictures

    async def check(self) -> int:
        """Refuse what is not a picture we take (judged by its header: the job decodes it);
        the status to answer with, 422 or 413 for one too large."""
        for number, upload in enumerate(self.uploads, 1):
            try:
                await check(upload.data)
            except Refused as refused:
                self.error = f"Picture {number}: {refused}"
                return refused.status
        return 422


def _in_a_slot(name: str) -> bool:
    found = _FIELD.fullmatch(name)
    return found is not None and int(found.group(1)) in SLOTS
