"""Peak reports read without a tree (the Reporting Server's plain form) give exactly what the
element tree gives; anything else is read, or refused, by the tree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrm.domain.errors import SourceError
from lrm.sim.gvp import peak_report_xml
from lrm.sources.gvp import _peak_report_tree, _plain_peak_report, parse_peak_report

START = datetime(2026, 11, 23, 23, tzinfo=UTC)


def stamp(k: int) -> str:
    return (START + timedelta(minutes=5 * k)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


BINS = {  # ways a bin may be written: the plain one and others a server could send
    "plain": lambda t, c: f'<peak time="{t}" count="{c}"/>',
    "spaced": lambda t, c: f'<peak time="{t}" count="{c}" />',
    "swapped": lambda t, c: f'<peak count="{c}" time="{t}"/>',
    "quotes": lambda t, c: f"<peak time='{t}' count='{c}'/>",
    "entity": lambda t, c: f'<peak time="{t.replace(":", "&#58;")}" count="{c}"/>',
    "open": lambda t, c: f'<peak time="{t}" count="{c}"></peak>',
    "comment": lambda t, c: f'<!-- a bin --><peak time="{t}" count="{c}"/>',
    "other": lambda t, c: f'<note/><peak time="{t}" count="{c}"/>',
    "bad_count": lambda t, c: f'<peak time="{t}" count="x{c}"/>',
    "no_count": lambda t, c: f'<peak time="{t}"/>',
    "bad_time": lambda t, c: f'<peak time="yesterday" count="{c}"/>',
}
AROUND = {
    "plain": ("<peak-report><manifest><request-uri>/peaks/RM?a=1&amp;b=2</request-uri>"
              "</manifest><peaks granularity=\"FIVE_MINUTES\">", "</peaks></peak-report>"),
    "declared": ('<?xml version="1.0" encoding="UTF-8"?>\n<peak-report>\n  <peaks>\n',
                 "\n  </peaks>\n</peak-report>\n"),
    "commented": ("<peak-report><!-- <peaks> --><peaks>", "</peaks></peak-report>"),
    "nested": ("<peak-report><manifest><peaks>", "</peaks></manifest><peaks/></peak-report>"),
    "no_peaks": ("<peak-report><bins>", "</bins></peak-report>"),
    "other_root": ("<report><peaks>", "</peaks></report>"),
    "empty": ("<peak-report><peaks>", "</peaks></peak-report>"),
    "unclosed": ("<peak-report><peaks>", "</peaks>"),
    "two": ("<peak-report><peaks>", "</peaks><peaks><peak time=\"x\" count=\"1\"/></peaks>"
            "</peak-report>"),
    # Bins the tree never sees (hidden in markup that is not an element), before the real,
    # empty <peaks>; and characters that `\s` would take for white space but XML refuses.
    "in_comment": ("<peak-report><!--<peaks>", "</peaks>--><peaks/></peak-report>"),
    "in_cdata": ("<peak-report><x><![CDATA[<peaks>", "</peaks>]]></x><peaks></peaks>"
                 "</peak-report>"),
    "in_instruction": ("<peak-report><?x <peaks>", "</peaks>?><peaks/></peak-report>"),
    "form_feed": ("<peak-report><peaks>\x0c", "</peaks></peak-report>"),
    "vertical_tab": ("<peak-report><peaks>", "\x0b</peaks></peak-report>"),
}


def read(parse: object, body: bytes) -> tuple[list[int], list[int]] | str:
    try:
        series = parse(body, server="rs")  # type: ignore[operator]
    except SourceError as exc:
        return f"error: {exc}"
    return series.bin_start.tolist(), series.count.tolist()


@settings(max_examples=300)
@given(st.sampled_from(["plain", "declared"] * 3 + sorted(AROUND)),  # plain forms more often
       st.lists(st.tuples(st.sampled_from(["plain"] * 20 + sorted(BINS)), st.integers(0, 10_000),
                          st.sampled_from(["", " ", "\n    "])), max_size=12),
       st.none() | st.integers(0, 400))
def test_reports_read_plainly_equal_the_tree(around: str, bins: list[tuple[str, int, str]],
                                             cut: int | None) -> None:
    head, tail = AROUND[around]
    body = (head + "".join(gap + BINS[kind](stamp(k), count)
                           for k, (kind, count, gap) in enumerate(bins)) + tail).encode()
    if cut is not None:
        body = body[:cut]
    tree = read(_peak_report_tree, body)
    plain = _plain_peak_report(body, "rs")
    if plain is not None:
        assert (plain.bin_start.tolist(), plain.count.tolist()) == tree
    assert read(parse_peak_report, body) == tree


def test_the_servers_own_reports_are_read_plainly() -> None:
    """The simulator writes reports as Reporting Servers do: no tree is built for them."""
    peaks = [(int((START + timedelta(minutes=5 * k)).timestamp()), k % 7) for k in range(288)]
    body = peak_report_xml("/ems-rs/operations/peaks/RM?tenant-id=1&x=<y>", peaks[0][0],
                           peaks[-1][0] + 300, "FIVE_MINUTES", peaks)
    plain = _plain_peak_report(body, "rs")
    assert plain is not None
    assert plain.bin_start.tolist() == [t for t, _ in peaks]
    assert plain.count.tolist() == [c for _, c in peaks]
    np.testing.assert_array_equal(parse_peak_report(body, server="rs").count, plain.count)


@pytest.mark.parametrize("around", ["in_comment", "in_cdata", "in_instruction", "form_feed",
                                    "vertical_tab"])
def test_bins_outside_the_reports_elements_are_not_read_plainly(around: str) -> None:
    head, tail = AROUND[around]
    body = (head + BINS["plain"](stamp(0), 5) + tail).encode()
    assert _plain_peak_report(body, "rs") is None
    assert read(parse_peak_report, body) == read(_peak_report_tree, body)


@pytest.mark.parametrize("body", [b"", b"<peak-report>", b"<peak-report><peaks>"
                                  b'<peak time="2026-11-24T00:00:00.000Z" count="3"/>'])
def test_truncated_reports_are_malformed(body: bytes) -> None:
    with pytest.raises(SourceError, match="malformed XML"):
        parse_peak_report(body, server="rs")
