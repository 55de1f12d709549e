"""Time the tests that existed at an earlier commit, then and now, from two JUnit reports.

Usage (both reports from ``pytest --junitxml=...``, run one after the other on one machine)::

    python bench/compare_suites.py OLD.xml NEW.xml

A test is matched by its node id; tests that moved or were renamed are matched through
:data:`SUCCESSORS`. Tests removed with what they tested (the environment scrubbing that the
sandbox replaced) are listed, and count as zero now. Prints the sums per file and overall.
"""

from __future__ import annotations

import collections
import sys
import xml.etree.ElementTree as ET

SUCCESSORS = {
    "tests/integration/test_execution_faults.py::"
    "test_a_trial_whose_worker_keeps_dying_fails_after_bounded_attempts": "tests/unit/tuning/"
    "test_retries.py::test_a_trial_whose_worker_keeps_dying_fails_after_bounded_attempts",
    "tests/integration/test_end_to_end.py::test_test_labels_never_reach_a_worker": "tests/"
    "integration/test_end_to_end.py::test_validation_and_test_data_never_reach_a_training_sandbox",
    "tests/unit/leaderboard/test_web_app.py::test_case_scores_api": "tests/unit/leaderboard/"
    "test_web_app.py::test_case_scores_are_served_to_the_organizers_token_only",
}
"""Old node id -> the test that does its work now."""


def durations(report: str) -> dict[str, float]:
    """Node id -> seconds (setup, call and teardown, as pytest's JUnit report counts them)."""
    times: dict[str, float] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        node = case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "")
        times[node] = float(case.get("time", 0))
    return times


def main(old_report: str, new_report: str) -> None:
    old, new = durations(old_report), durations(new_report)
    then: collections.Counter[str] = collections.Counter()
    now: collections.Counter[str] = collections.Counter()
    gone = []
    for node, seconds in old.items():
        successor = SUCCESSORS.get(node, node)
        file = node.split("::")[0]
        then[file] += seconds
        if successor in new:
            now[file] += new[successor]
        else:
            gone.append(node)
    print(f"{'file':58} {'then':>8} {'now':>8} {'ratio':>6}")
    for file in sorted(then, key=lambda f: -then[f]):
        if then[file] >= 1 or now[file] >= 1:
            ratio = now[file] / then[file] if then[file] else float("nan")
            print(f"{file:58} {then[file]:8.1f} {now[file]:8.1f} {ratio:6.2f}")
    total_then, total_now = sum(then.values()), sum(now.values())
    print(
        f"{'the tests of then (' + str(len(old)) + ')':58} {total_then:8.1f} {total_now:8.1f} "
        f"{total_now / total_then:6.2f}"
    )
    print(f"the whole suite now ({len(new)} tests): {sum(new.values()):.1f} s")
    print(f"removed with what they tested ({len(gone)}):", *sorted(gone), sep="\n  ")


if __name__ == "__main__":
    main(*sys.argv[1:3])
