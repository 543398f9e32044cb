"""The metrics listener against Prometheus' own Python parser.

    python metrics.py API_URL METRICS_URL

Logs in once with the right password and once with a wrong one, then reads METRICS_URL
with prometheus_client's text-format parser (which raises on anything it cannot read)
and checks that the login counters moved and that every name follows the conventions.
"""

import sys
import urllib.error
import urllib.parse
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def login(api_url, password):
    body = urllib.parse.urlencode({"username": "johndoe", "password": password}).encode()
    try:
        with urllib.request.urlopen(f"{api_url}/token", body) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def scrape(metrics_url):
    with urllib.request.urlopen(f"{metrics_url}/metrics") as response:
        content_type = response.headers["Content-Type"]
        assert content_type == "text/plain; version=0.0.4; charset=utf-8", content_type
        families = list(text_string_to_metric_families(response.read().decode()))
    values = {}
    for family in families:
        assert family.name.startswith("gatehouse_"), family.name
        assert family.documentation, f"{family.name} has no HELP"
        if family.type == "counter":
            assert not family.name.endswith("_total"), family.name  # the parser strips it
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def main(api_url, metrics_url):
    before = scrape(metrics_url)
    assert login(api_url, "secret") == 200
    assert login(api_url, "wrong") == 401
    after = scrape(metrics_url)

    def moved(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    login_op = "login_for_access_token_token_post"
    checks = {
        "successful logins": moved("gatehouse_logins_total", outcome="success"),
        "failed logins": moved("gatehouse_logins_total", outcome="invalid_credentials"),
        "200s of the login": moved("gatehouse_http_requests_total", operation=login_op, status="200"),
        "401s of the login": moved("gatehouse_http_requests_total", operation=login_op, status="401"),
    }
    for name, delta in checks.items():
        print(f"{name}: +{delta:g}")
    latency = moved("gatehouse_http_request_duration_seconds_count", operation=login_op)
    print(f"login latencies observed: +{latency:g}")
    ok = all(delta == 1 for delta in checks.values()) and latency == 2
    print(f"{len(after)} samples parsed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
