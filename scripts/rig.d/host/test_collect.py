#!/usr/bin/python3
"""Unit tests of riglib.collect (no QEMU): the arithmetic behind summary.json's figures and series.
Run: scripts/rig selftest  (or python3 -m unittest in this directory)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from riglib.collect import per_second, per_second_rates, percentile_from_bins  # noqa: E402


class ArithmeticTests(unittest.TestCase):
    def test_percentiles_from_histogram_bins(self):
        bins = {"1000": 50, "2000": 40, "9000": 9, "50000": 1}
        self.assertEqual(percentile_from_bins(bins, 0.50), 1000)
        self.assertEqual(percentile_from_bins(bins, 0.51), 2000)
        self.assertEqual(percentile_from_bins(bins, 0.99), 9000)
        self.assertEqual(percentile_from_bins(bins, 1.0), 50000)
        self.assertIsNone(percentile_from_bins({}, 0.5))

    def test_rates_from_cumulative_samples_add_up(self):
        times = [0.0, 1.5, 2.5, 4.0]
        counts = [0, 150, 250, 250]
        rates = per_second_rates(times, counts, 0.0, 5)
        self.assertEqual(rates, [100.0, 100.0, 50.0, 0.0, 0.0])
        self.assertAlmostEqual(sum(rates), 250)

    def test_fio_samples_spread_over_the_bins_they_cover(self):
        go = 10_000
        # 100 IOPS samples stamped 1.5 s, 2.5 s, 3.5 s after go: each covers the second before.
        series = {(1, 0): [(go + 1500, 100.0), (go + 2500, 100.0), (go + 3500, 100.0)]}
        self.assertEqual(per_second(series, go, 5), [50.0, 100.0, 100.0, 50.0, 0.0])


if __name__ == "__main__":
    unittest.main()
