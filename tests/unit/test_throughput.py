"""The pull meter reads only download bytes from the daemon's progress messages, and its clock runs
only while bytes are due: extraction never looks like slowness."""

from lanmirror.daemon.throughput import PullMeter


def msg(layer, status, current=None, total=None):
    detail = {} if current is None else {"current": current, "total": total}
    return {"id": layer, "status": status, "progressDetail": detail}


def test_rate_over_the_window_while_downloading():
    meter = PullMeter(window=10)
    meter.feed(msg("a", "Pulling fs layer"))
    meter.feed(msg("a", "Downloading", 0, 100_000_000))
    assert meter.tick(0.0) is None  # not a whole window yet
    for second in range(1, 11):
        meter.feed(msg("a", "Downloading", second * 200_000, 100_000_000))
        verdict = meter.tick(float(second))
    assert verdict is not None
    assert abs(verdict.rate - 200_000) < 1 and verdict.remaining == 100_000_000 - 2_000_000 and verdict.completed == 0


def test_extraction_stops_the_clock_and_completed_layers_are_counted():
    meter = PullMeter(window=5)
    meter.feed(msg("a", "Downloading", 10, 1000))
    meter.feed(msg("a", "Download complete"))
    meter.feed(msg("a", "Extracting", 500, 1000))  # extraction progress is not download progress
    for second in range(30):  # minutes of extraction: never a verdict
        assert meter.tick(float(second)) is None
    meter.feed(msg("b", "Downloading", 0, 5000))
    assert meter.tick(30.0) is None  # the window starts again with new bytes due
    meter.feed(msg("b", "Downloading", 0, 5000))
    verdict = meter.tick(35.0)
    assert verdict is not None and verdict.rate == 0 and verdict.completed == 1000 and verdict.remaining == 5000


def test_a_fast_pull_is_measured_fast():
    meter = PullMeter(window=2)
    meter.feed(msg("a", "Downloading", 0, 10**9))
    meter.tick(0.0)
    meter.feed(msg("a", "Downloading", 300_000_000, 10**9))
    meter.tick(1.0)
    meter.feed(msg("a", "Downloading", 600_000_000, 10**9))
    verdict = meter.tick(2.0)
    assert verdict is not None and verdict.rate == 300_000_000
