"""Under pytest-xdist, tests that share a module-scoped fixture stay on one worker (one
group per module, or per parameter of that fixture); every other test is spread alone; and
the modules of long tests start first."""

from __future__ import annotations

import pytest

from tests.conftest import group_shared_fixtures, longest_first

MODULE = """
import pytest

@pytest.fixture(scope="module")
def gateway():
    return "one process for the module"

@pytest.fixture(scope="module", params=["moto", "s3rver"])
def server(request):
    return request.param

@pytest.fixture
def bucket():
    return "one per test"

def test_one(gateway): pass
def test_two(gateway, bucket): pass
def test_alone(bucket): pass
def test_on_each_server(server): pass

@pytest.mark.xdist_group("chosen")
def test_already_grouped(gateway): pass
"""


INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers = slow: long\n"


def test_groups_follow_the_shared_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    items = pytester.getitems(MODULE)
    group_shared_fixtures(items)
    groups = {}
    for item in items:
        marks = [m.args[0] for m in item.iter_markers("xdist_group")]
        groups[item.name] = marks
    module = items[0].nodeid.split("::", 1)[0]
    assert groups == {
        "test_one": [module],
        "test_two": [module],
        "test_alone": [],
        "test_on_each_server[moto]": [f"{module}[moto]"],
        "test_on_each_server[s3rver]": [f"{module}[s3rver]"],
        "test_already_grouped": ["chosen"],
    }


def test_modules_with_a_slow_test_start_first_and_stay_whole(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        test_a="def test_quick(): pass\n",
        test_b="import pytest\n\ndef test_zeta(): pass\n\n"
               "@pytest.mark.slow\ndef test_long(): pass\n",
        test_c="def test_also_quick(): pass\n",
    )
    items, _ = pytester.inline_genitems()
    longest_first(items)
    assert [item.name for item in items] == [
        "test_zeta", "test_long", "test_quick", "test_also_quick"
    ]
