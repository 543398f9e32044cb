"""Every status that schemathesis saw is documented for its operation.

    python statuses_documented.py OPENAPI_URL HAR_FILE

Reads the statuses from the document itself, so a status added to the service without
being documented, or dropped from the document while still answered, fails here. Requests
with a method the document does not declare for a path (schemathesis' unsupported-method
probes) must have been answered 405.
"""

import collections
import json
import re
import sys
import urllib.request
from urllib.parse import urlsplit


# Operations whose success fuzzing must not reach: a password change needs the account's
# current password, and would end the session the fuzzing logs in with (tests/api and the
# OAuth client check cover it); confirming TOTP needs the code of the enrolled secret, new
# recovery codes need TOTP on, and an admin's TOTP reset needs a user fuzzing has not
# deleted first (tests/api/totp.rs and the second-factor check, with pyotp, cover them);
# the links of verification and reset mails need a token only a mail holds (tests/api and
# the accounts check, which reads the mail, cover them). A client's redirect URIs must be
# https URLs (or http on a loopback host) without fragment, which generated strings
# practically never are (tests/api/admin_clients.rs covers registration).
NO_SUCCESS_EXPECTED = {
    ("POST", "/admin/clients/"),
    ("POST", "/users/me/password"),
    ("POST", "/users/me/totp/confirm"),
    ("POST", "/users/me/totp/recovery-codes"),
    ("DELETE", "/admin/users/{username}/totp"),
    ("GET", "/verify-email"),
    ("POST", "/verify-email"),
    ("GET", "/reset-password"),
    ("POST", "/reset-password"),
    # Sign in with gatehouse: /authorize answers 200 (the login page) only to a registered
    # client's request with a well-formed S256 challenge, and /userinfo only to a token
    # granted openid, which only the code flow gives, and only where id tokens are signed
    # (the fuzzing service uses HS256); the sign-in checks (tests/contract/oidc/,
    # browser/sign-in.mjs) cover them.
    ("GET", "/authorize"),
    ("GET", "/userinfo"),
    ("POST", "/userinfo"),
}


def template_of(document, path):
    """The document's path that `path` is an instance of (`/admin/users/{username}`)."""
    if path in document["paths"]:
        return path
    for template in document["paths"]:
        pattern = "^" + re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return template
    return path


def main(document_url, har_path):
    with urllib.request.urlopen(document_url) as f:
        document = json.load(f)
    with open(har_path) as f:
        har = json.load(f)

    seen = collections.Counter()
    for entry in har["log"]["entries"]:
        request = entry["request"]
        path = template_of(document, urlsplit(request["url"]).path)
        seen[(request["method"].upper(), path, entry["response"]["status"])] += 1
    if not seen:
        print("no requests recorded")
        return 1

    problems = []
    for (method, path, status), count in sorted(seen.items()):
        operation = document["paths"].get(path, {}).get(method.lower())
        if operation is None:
            verdict = "ok (undeclared method)" if status == 405 else "NOT 405"
            if status != 405:
                problems.append(f"{method} {path} is not an operation but answered {status}")
        else:
            documented = operation["responses"]
            ok = str(status) in documented or f"{str(status)[0]}XX" in documented
            verdict = "documented" if ok else "UNDOCUMENTED"
            if not ok:
                problems.append(f"{method} {path} answered {status}, not in {sorted(documented)}")
        print(f"{count:6d}  {method:7s} {path:24s} {status}  {verdict}")

    for path, item in document["paths"].items():
        for method, operation in item.items():
            success = [int(s) for s in operation["responses"] if s.isdigit() and s.startswith("2")]
            if (method.upper(), path) in NO_SUCCESS_EXPECTED:
                continue
            if not any((method.upper(), path, s) in seen for s in success):
                problems.append(
                    f"{method.upper()} {path} never answered {success}: was the login configured?"
                )

    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
