"""Trendscope's API process."""

import warnings

from authlib.deprecate import AuthlibDeprecationWarning

# Authlib >= 1.9 prefers the `httpx2` package and warns at import when it falls back to
# `httpx`, which works and which the rest of the code (and its tests' fakes) uses. The filter
# must follow `authlib.deprecate`'s own "always" filter, so it is set here, where every
# process imports first; it matches that one message only.
warnings.filterwarnings(
    "ignore",
    message="The httpx module is deprecated; please use httpx2 instead",
    category=AuthlibDeprecationWarning,
)
