#!/usr/bin/python3
"""Unit tests of riglib.drivers (no QEMU): the report of a dom0 driver's checks.
Run: scripts/rig selftest  (or python3 -m unittest in this directory)."""
import contextlib
import io
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from riglib.drivers import report_checks  # noqa: E402


class DriverReportTests(unittest.TestCase):
    def report(self, checks, status):
        with tempfile.TemporaryDirectory() as d:
            if checks is not None:
                with open(os.path.join(d, "checks.txt"), "w") as f:
                    f.write(checks)
            if status is not None:
                with open(os.path.join(d, "status"), "w") as f:
                    f.write(status + "\n")
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                failed = report_checks(d, "functional", "the functional tests", "DEST", ["extra line"])
            return failed, out.getvalue().splitlines()

    def test_counts_failures_and_prints_every_line(self):
        failed, lines = self.report("PASS functional: a\nFAIL functional: b\nINFO functional: c\n", "complete")
        self.assertEqual(failed, 1)
        self.assertEqual(lines, ["PASS functional: a", "FAIL functional: b", "INFO functional: c", "extra line",
                                 "functional: 1 passed, 1 failed -> DEST"])

    def test_a_driver_that_did_not_finish_or_checked_nothing_fails(self):
        failed, lines = self.report("PASS functional: a\n", None)
        self.assertEqual(failed, 1)
        self.assertIn("FAIL functional: the functional tests did not finish (machine stopped or timed out)", lines)
        failed, lines = self.report("INFO functional: c\n", "complete")
        self.assertEqual(failed, 1)
        self.assertIn("FAIL functional: no assertion was checked", lines)
        failed, lines = self.report(None, "aborted: xl create failed")
        self.assertEqual((failed, lines[-2]), (1, "FAIL functional: aborted: xl create failed"))


if __name__ == "__main__":
    unittest.main()
