"""alerts/episodes.py: cutting a pair's cells into episodes, and which rule watches which pair."""
import pytest

from alerts.config import Rule
from alerts.episodes import GREEN, RED, SKIP, WAIT, Cell, episodes, matches


def cells(states: str) -> list[Cell]:
    """One cell per letter, oldest first: g green, r red, s skipped, w waiting."""
    kinds = {"g": GREEN, "r": RED, "s": SKIP, "w": WAIT}
    return [Cell(commit=i, sha=f"c{i}", ctime=float(i), run=i, gitid=100 + i, attempt=1, created=float(i),
                 conclusion="success" if c == "g" else "failure", url=None, state=kinds[c])
            for i, c in enumerate(states)]


def shape(found) -> list[tuple]:
    return [([c.sha for c in e.cells], e.last_green and e.last_green.sha, e.fixer and e.fixer.sha, e.truncated)
            for e in found]


def test_episodes_newest_first_with_their_last_green_and_fixer():
    assert shape(episodes(cells("grrsgrwr"), complete=True)) == [
        (["c5", "c6", "c7"], "c4", None, False),
        (["c1", "c2"], "c0", "c4", False),
    ]


def test_skipped_cells_neither_break_nor_fix_an_episode():
    [found] = episodes(cells("grsrs"), complete=True)
    assert [c.sha for c in found.cells] == ["c1", "c3"] and found.fixer is None and found.reds == 2


def test_the_oldest_episode_of_an_incomplete_read_may_have_begun_earlier():
    found = episodes(cells("rrgr"), complete=False)
    assert shape(found) == [(["c3"], "c2", None, False), (["c0", "c1"], None, "c2", True)]
    assert shape(episodes(cells("rrgr"), complete=True))[1][3] is False


def test_waiting_cells_belong_to_the_episode_but_are_not_counted_red():
    [found] = episodes(cells("gwr"), complete=True)
    assert found.waiting and found.reds == 1 and len(found.cells) == 2


@pytest.mark.parametrize("rule, pair, watched", [
    (Rule("r"), ("o/a", "CI", "main", "main"), True),
    (Rule("r"), ("o/a", "CI", "main", "trunk"), False),
    (Rule("r"), ("o/a", "CI", "master", None), True),  # default branch unknown: main or master
    (Rule("r", repos=("acme/*",)), ("o/a", "CI", "main", "main"), False),
    (Rule("r", workflows=("Deploy*",)), ("o/a", "Deploy prod", "main", "main"), True),
    (Rule("r", branches=("release/*",)), ("o/a", "CI", "release/1.2", "main"), True),
    (Rule("r", branches=("release/*",)), ("o/a", "CI", "main", "main"), False),
])
def test_which_rule_watches_which_pair(rule, pair, watched):
    assert matches(rule, *pair) is watched
