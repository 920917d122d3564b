"""``--workers``: the setting, the refusal, each worker's settings and the summed metrics,
without processes (``tests/integration/test_workers.py`` runs real ones)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.ops.admin import Family, MetricsSum, parse_exposition, render
from gateway.ops.workers import memory_share, refusal, worker_settings
from gateway.settings import Settings, SettingsError, load_settings
from gateway.settings.fields import cpu_count


def settings(env: dict[str, str] | None = None, **flags: object) -> Settings:
    return load_settings(dict(flags), "/tmp", env=env or {})


def test_workers_default_to_one_and_auto_is_one_per_cpu() -> None:
    assert settings().server.workers == 1
    assert settings({"BUCKETDAV_WORKERS": "auto"}).server.workers == cpu_count()
    assert settings(workers="3").server.workers == 3


@pytest.mark.parametrize("value", ["0", "-1", "many", "1.5"])
def test_a_bad_worker_count_is_named(value: str) -> None:
    with pytest.raises(SettingsError, match="workers must be a number of processes"):
        settings({"BUCKETDAV_WORKERS": value})


def test_several_workers_need_a_shared_state() -> None:
    assert refusal(settings()) is None
    assert refusal(settings(workers="4", state="redis://127.0.0.1:6379/0")) is None
    reason = refusal(settings(workers="2"))
    assert reason is not None and "--state" in reason and "\n" not in reason


def test_each_worker_gets_its_share_of_the_memory_target_and_a_private_admin_port() -> None:
    whole = settings(workers="3", memory_target="300", admin_host="0.0.0.0", admin_port="9999",
                     state="redis://127.0.0.1:6379/0")
    one = worker_settings(whole, 8123)
    assert one.engine.memory_target == 100
    assert one.server.workers == 1 and one.server.port == 8123
    assert (one.ops.admin_host, one.ops.admin_port) == ("127.0.0.1", 0)
    assert one.server.state == whole.server.state and one.shares == whole.shares
    assert memory_share(2, 4) == 1  # never nothing


WORKER = """\
# HELP bucketdav_http_requests_total HTTP requests answered
# TYPE bucketdav_http_requests_total counter
bucketdav_http_requests_total{{method="GET",status="200"}} {requests}
bucketdav_http_requests_created{{method="GET",status="200"}} 1.7e9
# HELP bucketdav_open_connections Client connections open
# TYPE bucketdav_open_connections gauge
bucketdav_open_connections {connections}
# HELP bucketdav_http_request_duration_seconds Time
# TYPE bucketdav_http_request_duration_seconds histogram
bucketdav_http_request_duration_seconds_bucket{{le="0.1",method="GET"}} {requests}
bucketdav_http_request_duration_seconds_bucket{{le="+Inf",method="GET"}} {requests}
bucketdav_http_request_duration_seconds_count{{method="GET"}} {requests}
bucketdav_http_request_duration_seconds_sum{{method="GET"}} 0.5
"""


def values(body: bytes) -> dict[str, float]:
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def scrape(requests: int, connections: int) -> dict[str, Family]:
    return parse_exposition(WORKER.format(requests=requests, connections=connections))


def test_metrics_are_summed_over_workers_and_survive_a_restart() -> None:
    sums = MetricsSum()
    first = values(render(sums.total({0: (100, scrape(5, 2)), 1: (101, scrape(7, 1))}).values()))
    requests = "bucketdav_http_requests_total[('method', 'GET'), ('status', '200')]"
    assert first[requests] == 12
    assert first["bucketdav_open_connections[]"] == 3
    assert first["bucketdav_http_request_duration_seconds_count[('method', 'GET')]"] == 12
    assert not any("_created" in name for name in first)  # a sum of timestamps means nothing
    # worker 0 died and was replaced by pid 102: its counts stay, its gauges go
    after = values(render(sums.total({0: (102, scrape(1, 0)), 1: (101, scrape(8, 1))}).values()))
    assert after[requests] == 5 + 1 + 8
    assert after["bucketdav_open_connections[]"] == 1
    assert after["bucketdav_http_request_duration_seconds_sum[('method', 'GET')]"] == 1.5


def test_a_worker_missing_from_one_scrape_is_not_taken_for_dead() -> None:
    sums = MetricsSum()
    sums.total({0: (100, scrape(5, 0)), 1: (101, scrape(7, 0))})
    sums.total({1: (101, scrape(7, 0))})  # worker 0 did not answer this time
    again = values(render(sums.total({0: (100, scrape(6, 0)), 1: (101, scrape(7, 0))}).values()))
    assert again["bucketdav_http_requests_total[('method', 'GET'), ('status', '200')]"] == 13
