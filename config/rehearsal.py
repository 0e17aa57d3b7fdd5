"""What the release rehearsal's load does on the app: the pages it views and the forms it posts."""

import re

from pydantic import Field, field_validator, model_validator

from .base import Section, Text

# A path on the site, with an optional query string; no scheme, host or fragment.
SITE_PATH = r"^/[^\s#]*$"
FILE_NAME = re.compile(r"^\w[\w.-]*$")


class RehearsalForm(Section):
    """A form the load fills in and posts, as a user does: GET the page (for the CSRF cookie and
    token), then POST the form back to the same path."""

    path: str = Field(
        pattern=SITE_PATH,
        description="Path of the page with the form, e.g. `/entries/new/`; the form is posted "
        "back to it.",
    )
    fields: dict[str, Text] = Field(
        default_factory=dict,
        description="Values typed into the form: `name: value`. Hidden fields (the CSRF token), "
        "checkboxes (ticked) and selects (their selected or first option with a value) are "
        "taken from the page.",
    )
    files: dict[str, str] = Field(
        default_factory=dict,
        description="File inputs to upload: `name: file name`; each gets a small text file and "
        "the form is posted as `multipart/form-data`. None: posted URL-encoded.",
    )
    status: int | None = Field(
        None,
        ge=200,
        le=399,
        description="Status of a successful POST; none: any redirect (a Django view redirects "
        "after a successful POST, and answers 200 when it shows the form again with errors).",
    )

    @field_validator("files")
    @classmethod
    def _file_names(cls, files: dict[str, str]) -> dict[str, str]:
        for name, file_name in files.items():
            if not FILE_NAME.match(file_name):
                raise ValueError(
                    f"{name}: {file_name!r} is not a file name (letters, digits, . _ -), "
                    "e.g. notes.txt"
                )
        return files

    @model_validator(mode="after")
    def _each_input_once(self) -> "RehearsalForm":
        both = sorted(set(self.fields) & set(self.files))
        if both:
            raise ValueError(f"{', '.join(both)}: in both fields and files; keep one")
        return self


class RehearsalConfig(Section):
    """The load of `pulumi-django rehearse`: every virtual user views pages (each with the
    stylesheets, scripts and images it references), posts the forms and probes the health
    path. The pages are `/`, `paths` and the same-site pages they link to, found once on the
    version that runs now, before the load starts."""

    paths: list[str] = Field(
        default_factory=list,
        description="Pages viewed besides `/`, e.g. `[/notebooks/]`; the crawl starts from "
        "them and `/`.",
    )
    crawl_depth: int = Field(
        2,
        ge=0,
        le=5,
        description="Links followed from `/` and `paths` to find more pages to view (same "
        "site only; never static files, media, the health path, `logout`/`delete`/`signout` "
        "links); 0: only `/` and `paths`.",
    )
    max_pages: int = Field(
        30,
        ge=1,
        le=200,
        description="Pages the crawl keeps at most, `/` and `paths` included (those are always "
        "kept).",
    )
    forms: list[RehearsalForm] = Field(
        default_factory=list,
        description="Forms posted during the rehearsal; none: the load only reads.",
    )

    @field_validator("paths")
    @classmethod
    def _site_paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not re.match(SITE_PATH, path):
                raise ValueError(f"{path!r} is not a path on the site; start it with /")
        return paths
