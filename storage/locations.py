"""Locations of files: local paths and fsspec URLs (s3://, gs://, https://, file://), joined and resolved one way."""

import os
import posixpath

import fsspec
from fsspec import AbstractFileSystem


def is_url(location: str) -> bool:
    """True for `scheme://...` locations, False for local paths."""
    return "://" in location


def join(base: str, name: str) -> str:
    """`base/name` for a local folder or a URL prefix."""
    return posixpath.join(base, name) if is_url(base) else os.path.join(base, name)


def parent(location: str) -> str:
    """The folder holding a file: a URL prefix for URLs, an absolute path for local files."""
    if is_url(location):
        return location.rstrip("/").rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(location))


def resolve(base: str, location: str) -> str:
    """`location` made absolute: URLs and absolute paths as given, relative paths taken from folder `base`."""
    location = os.path.expanduser(location)
    if is_url(location) or os.path.isabs(location):
        return location
    if is_url(base):
        scheme, rest = base.split("://", 1)
        return f"{scheme}://{posixpath.normpath(posixpath.join(rest, location))}"
    return os.path.abspath(os.path.join(base, location))


def filesystem(location: str, storage_options: dict | None = None) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem serving `location` and the path to use with it."""
    return fsspec.core.url_to_fs(location, **(storage_options or {}))
