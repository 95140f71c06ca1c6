"""Schemathesis hooks for .ci/api-contract.sh (loaded through SCHEMATHESIS_HOOKS).

Generated data alone rarely names a title of the catalog or carries a valid token, so
nearly every access check would stop at 404 title_not_found or 401 invalid_token. These
hooks steer part of the generated requests into the paths behind those answers: a
generated title is swapped (deterministically, by its hash) for one of the demo catalog's
most of the time, and most requests get a bearer token: a real one (a member's, a
reader's without membership, a device's) or one the server must refuse. Everything else
stays as generated.
"""

import os
import re
import zlib

import schemathesis

# The demo catalog (Sources/PaywallService/Resources/demo.json).
TITLES = ["euronews", "le-monde", "the-daily", "the-lancet", "el-pais", "der-spiegel", "financial-review"]
# Real tokens, one a line, written by api-contract.sh before the run.
TOKENS = [line.strip() for line in open(os.environ["API_CONTRACT_TOKENS"]) if line.strip()] if os.environ.get("API_CONTRACT_TOKENS") else []
# Signing out everywhere ends the bearer's access tokens: that route gets this token, of an
# account no other request uses, instead of TOKENS (which would be refused from then on).
SIGN_OUT_TOKENS = [line.strip() for line in open(os.environ["API_CONTRACT_SIGN_OUT_TOKEN"]) if line.strip()] if os.environ.get("API_CONTRACT_SIGN_OUT_TOKEN") else []


def _pick(value, choices, keep_one_in):
    """A choice for `value`, or None (keep it) for about one value in `keep_one_in`."""
    digest = zlib.crc32(repr(value).encode("utf-8", "surrogatepass"))
    if digest % keep_one_in == 0:
        return None
    return choices[(digest // keep_one_in) % len(choices)]


SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def _with_catalog_title(check):
    """A check with a catalog title instead of its generated one, when that one is a valid
    slug (an invalid title stays: negative cases must stay negative)."""
    if isinstance(check, dict) and isinstance(check.get("title"), str) and SLUG.fullmatch(check["title"]):
        title = _pick(check["title"], TITLES, 4)
        if title is not None:
            check = dict(check, title=title)
    return check


@schemathesis.hook
def map_body(context, body):
    path = context.operation.path if context.operation is not None else ""
    if path == "/v1/access":
        return _with_catalog_title(body)
    if path == "/v1/access/preview" and isinstance(body, dict) and isinstance(body.get("articles"), list):
        return dict(body, articles=[_with_catalog_title(item) for item in body["articles"]])
    return body


# Bearer tokens a reader may send: the real ones, and ones the server must refuse (401).
REFUSED = ["not-a-token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "a.b.c"]


# Operations that read a bearer token: the access checks, devices, and the readers'
# routes that need an access token (a device token or a refused one must get 401 there).
BEARER_PATHS = (
    "/v1/access", "/v1/access/preview", "/v1/devices", "/v1/accounts", "/v1/me", "/v1/me/sessions/{id}",
    "/v1/me/password", "/v1/me/email", "/v1/me/export", "/v1/sessions/sign-out-everywhere", "/v1/email/verification", "/v1/trials", "/v1/me/app-account-token",
)

ACCESS_ONLY_PATHS = (
    "/v1/me", "/v1/me/sessions/{id}", "/v1/me/password", "/v1/me/email", "/v1/me/export", "/v1/sessions/sign-out-everywhere", "/v1/email/verification", "/v1/trials", "/v1/me/app-account-token",
)


@schemathesis.hook
def map_case(context, case):
    """Gives most requests a bearer token (generated data never has one):
    a real one mostly, sometimes one the server must refuse."""
    path = context.operation.path if context.operation is not None else ""
    if not TOKENS or path not in BEARER_PATHS:
        return case
    # Operations that take only an access token get a generated (always refused) bearer
    # header from schemathesis: replace it most of the time, so their 200s are tested too.
    if "Authorization" in case.headers and path not in ACCESS_ONLY_PATHS:
        return case
    real = SIGN_OUT_TOKENS if path == "/v1/sessions/sign-out-everywhere" else TOKENS
    choices = [None, None] + real * 2 + REFUSED
    token = choices[zlib.crc32(repr((case.body, sorted(case.headers.items()))).encode("utf-8", "surrogatepass")) % len(choices)]
    if token is not None:
        case.headers["Authorization"] = f"Bearer {token}"
    return case
