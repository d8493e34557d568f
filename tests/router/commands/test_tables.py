"""Terminal tables: aligned columns, numbers right-aligned, long cells cut."""

from __future__ import annotations

from router.commands.tables import cell, render_table


def test_columns_are_aligned_and_numbers_right_aligned() -> None:
    rows = [
        {"arm": "small", "share": 0.6666666, "chosen": True, "reward": None},
        {"arm": "a-much-longer-arm", "share": 0.25, "chosen": False, "reward": 1},
    ]
    assert render_table(rows, title="arms").splitlines() == [
        "arms",
        "arm                 share  chosen  reward",
        "-----------------  ------  ------  ------",
        "small              0.6667  yes          -",
        "a-much-longer-arm    0.25  no           1",
    ]


def test_chosen_columns_long_cells_and_no_rows() -> None:
    rows = [{"a": "x" * 30, "b": "line one\nline two", "c": 3}]
    text = render_table(rows, ["b", "a"], max_width=10)
    assert text.splitlines()[2] == "line on...  xxxxxxx..."
    assert render_table([], title="rewards") == "rewards\n(none)"


def test_cells() -> None:
    assert [cell(None), cell(False), cell(1.23456789), cell(12345678.9), cell("s")] == [
        "-",
        "no",
        "1.235",
        "1.235e+07",
        "s",
    ]
