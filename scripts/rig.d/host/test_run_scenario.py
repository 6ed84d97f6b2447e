#!/usr/bin/python3
"""Unit tests of dom0's scripts/rig.d/dom0/run-scenario (no QEMU): its functions that read and
write the backend's sysfs files (the snapshot, the sampler, the scheduler settings) run in
bash against a made-up tree of those files, with stubs for what needs Xen.
Run: scripts/rig selftest  (or python3 -m unittest in this directory)."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from riglib.common import RIG_D, read_text  # noqa: E402
from test_scenario import write  # noqa: E402

RUN_SCENARIO = os.path.join(RIG_D, "dom0", "run-scenario")
FUNCTIONS = ("now_ms", "snapshot", "sampler", "wait_for_file", "is_rblkback_key", "set_vbd_sched",
             "set_group_setting", "restore_group_settings", "set_backend_key")


def run_scenario_parts():
    """The definitions the tests need, cut out of run-scenario: its SCHED_*/STATS_FILES lines,
    the OLD_GROUP and REF_RATE declarations and the functions above (a one-line function, or
    from its `NAME() {` line to the next line that is just `}`)."""
    text = read_text(RUN_SCENARIO)
    parts = re.findall(r"^(?:SCHED_\w+|STATS_FILES)=.*$", text, re.M)
    parts += re.findall(r"^declare -A (?:OLD_GROUP|REF_RATE)=\(\)$", text, re.M)
    for name in FUNCTIONS:
        m = (re.search(rf"^{name}\(\) \{{ [^\n]*; \}}$", text, re.M)       # a one-line function
             or re.search(rf"^{name}\(\) \{{$.*?^\}}$", text, re.M | re.S))
        assert m, f"{name} not found in {RUN_SCENARIO}"
        parts.append(m.group(0))
    return "\n".join(parts) + "\n"


def make_tree(root, rblkback=True):
    """Two domains as run-scenario knows them after xl create: alpha (domid 1) with xvdb and
    xvdc, beta (domid 2) with xvdb; with rblkback their sched/ files, the domains' files
    and one scheduling group vdb."""
    files = {}
    for vbd in ("vbd-1-51728", "vbd-1-51744", "vbd-2-51728"):
        for i, ctr in enumerate(("rd_req", "wr_req", "rd_sect", "wr_sect", "oo_req", "f_req", "ds_req")):
            files[f"devices/{vbd}/statistics/{ctr}"] = str(10 * i + int(vbd[-1]))
        if rblkback:
            files.update({f"devices/{vbd}/sched/weight": "100", f"devices/{vbd}/sched/group": "vdb",
                          f"devices/{vbd}/sched/dispatched": "5", f"devices/{vbd}/sched/held_by_scheduler": "6",
                          f"devices/{vbd}/sched/held_by_limit": "7", f"devices/{vbd}/sched/iops_limit": "0",
                          f"devices/{vbd}/sched/bps_limit": "0"})
    if rblkback:
        for domid in (1, 2):
            for f, v in (("weight", "100"), ("reservation_iops", "0"), ("reservation_bps", "0"),
                         ("sched_dispatched", "11"), ("sched_holds", "12"), ("throttled_us", "13")):
                files[f"rblkback/domains/{domid}/{f}"] = v
        files.update({"rblkback/groups/vdb/window": "16", "rblkback/groups/vdb/iops_limit": "0",
                      "rblkback/groups/vdb/bps_limit": "5000000", "rblkback/groups/vdb/in_flight": "3",
                      "rblkback/groups/vdb/dispatched": "40", "rblkback/groups/vdb/held": "4",
                      "rblkback/groups/vdb/vbds": "3"})
    for path, value in files.items():
        os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
        write(os.path.join(root, path), value + "\n")


class RunScenarioTests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        os.makedirs(os.path.join(self.root, "out"))
        # rblkctl: records its arguments; `set 9 ...` fails as the kernel would refuse it.
        self.rblkctl = write(os.path.join(self.root, "rblkctl"),
                             '#!/bin/bash\necho "rblkctl $*" >>"$(dirname "$0")/rblkctl-calls"\n'
                             '[[ $2 != 9 ]] || { echo "rblkctl: refused" >&2; exit 1; }\n')
        os.chmod(self.rblkctl, 0o755)

    def tearDown(self):
        self.tmp.cleanup()

    def bash(self, body, backend="rblkback"):
        """Runs body after run-scenario's definitions, with its globals as they are after the
        domains were created; (exit status, stdout)."""
        script = f"""set -u
OUT={self.root}/out
BACKEND={backend}
BACKEND_DEVICES={self.root}/devices
RBLKBACK={self.root}/rblkback
RBLKCTL={self.rblkctl}
DOMAINS="alpha beta"
SAMPLE_S=0.05
fail() {{ echo "FAIL: $*"; exit 1; }}
progress() {{ :; }}
declare -A DOMID=([alpha]=1 [beta]=2) VBD=([alpha]=vbd-1-51728 [beta]=vbd-2-51728)
declare -A DISKS=([alpha]="xvdb xvdc" [beta]="xvdb")
declare -A VBD_OF=([alpha.xvdb]=vbd-1-51728 [alpha.xvdc]=vbd-1-51744 [beta.xvdb]=vbd-2-51728)
{run_scenario_parts()}
{body}
"""
        p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def out(self, name):
        path = os.path.join(self.root, "out", name)
        return read_text(path) if os.path.isfile(path) else ""

    def test_vbd_weights_and_the_window_are_written_logged_and_the_window_restored(self):
        make_tree(self.root)
        rc, stdout, stderr = self.bash('set_vbd_sched alpha vbd_weights 1,3\nset_group_setting window 8\n'
                                       'cat "$RBLKBACK/groups/vdb/window"\nrestore_group_settings\n')
        self.assertEqual(rc, 0, stdout + stderr)
        self.assertEqual(read_text(os.path.join(self.root, "devices/vbd-1-51728/sched/weight")), "1\n")
        self.assertEqual(read_text(os.path.join(self.root, "devices/vbd-1-51744/sched/weight")), "3\n")
        self.assertEqual(stdout, "8\n")
        self.assertEqual(read_text(os.path.join(self.root, "rblkback/groups/vdb/window")), "16\n")
        logged = [line.split()[1:] for line in self.out("limits.log").splitlines()]
        self.assertEqual(logged, [["alpha", "xvdb.weight", "1"], ["alpha", "xvdc.weight", "3"],
                                  ["group:vdb", "window", "8"]])
        self.assertTrue(all(re.fullmatch(r"\d{13}", line.split()[0]) for line in self.out("limits.log").splitlines()))

    def test_vbd_limits_and_the_pool_are_written_logged_and_the_pool_restored(self):
        make_tree(self.root)
        rc, stdout, stderr = self.bash('set_vbd_sched alpha vbd_iops_limits 100,60\n'
                                       'set_backend_key beta 2 51728 vbd_bps_limits 2097152\n'
                                       'set_group_setting iops_limit 300\nset_group_setting bps_limit 0\n'
                                       'set_group_setting iops_limit 250\n'
                                       'cat "$RBLKBACK/groups/vdb/iops_limit" "$RBLKBACK/groups/vdb/bps_limit"\n'
                                       'restore_group_settings\n')
        self.assertEqual(rc, 0, stdout + stderr)
        tree = lambda path: read_text(os.path.join(self.root, path))  # noqa: E731
        self.assertEqual((tree("devices/vbd-1-51728/sched/iops_limit"), tree("devices/vbd-1-51744/sched/iops_limit"),
                          tree("devices/vbd-2-51728/sched/bps_limit")), ("100\n", "60\n", "2097152\n"))
        self.assertEqual(stdout, "250\n0\n")
        # The values before the run come back, not the first one set in it.
        self.assertEqual((tree("rblkback/groups/vdb/iops_limit"), tree("rblkback/groups/vdb/bps_limit")),
                         ("0\n", "5000000\n"))
        self.assertEqual([line.split()[1:] for line in self.out("limits.log").splitlines()],
                         [["alpha", "xvdb.iops_limit", "100"], ["alpha", "xvdc.iops_limit", "60"],
                          ["beta", "xvdb.bps_limit", "2097152"], ["group:vdb", "iops_limit", "300"],
                          ["group:vdb", "bps_limit", "0"], ["group:vdb", "iops_limit", "250"]])
        # A module without the pool's files: the run fails and says which file it lacked.
        os.remove(os.path.join(self.root, "rblkback/groups/vdb/iops_limit"))
        rc, stdout, _ = self.bash("set_group_setting iops_limit 300\n")
        self.assertEqual(rc, 1)
        self.assertIn("FAIL: [scheduler] iops_limit = 300: no scheduling group in", stdout)
        self.assertIn("(with a file iops_limit)", stdout)

    def test_a_missing_sched_directory_or_group_fails_the_run(self):
        make_tree(self.root, rblkback=False)
        rc, stdout, _ = self.bash("wait_for_file() { return 1; }\nset_vbd_sched alpha vbd_weights 1,3\n")
        self.assertEqual(rc, 1)
        self.assertIn("FAIL: alpha: ", stdout)
        self.assertIn("vbd-1-51728/sched/weight missing", stdout)
        rc, stdout, _ = self.bash("set_group_setting window 8\n")
        self.assertEqual(rc, 1)
        self.assertIn("FAIL: [scheduler] window = 8: no scheduling group in", stdout)

    def test_stock_skips_the_scheduler_settings_and_logs_that(self):
        make_tree(self.root, rblkback=False)
        rc, stdout, stderr = self.bash("set_vbd_sched alpha vbd_weights 1,3\nset_group_setting window 8\n"
                                       "set_backend_key alpha 1 51728 weight 4\n"
                                       "set_backend_key alpha 1 51728 reservation_iops 150\n"
                                       "set_vbd_sched alpha vbd_iops_limits 100,100\n"
                                       "set_backend_key alpha 1 51728 vbd_bps_limits 0,1048576\n"
                                       "set_group_setting iops_limit 300\n", backend="stock")
        self.assertEqual(rc, 0, stdout + stderr)
        self.assertEqual(self.out("limits.log"), "")
        events = [line.split(None, 1)[1] for line in self.out("events.log").splitlines()]
        self.assertEqual(events, ["alpha vbd_weights=1,3 skipped: backend stock has no scheduler",
                                  "- window=8 skipped: backend stock has no scheduler",
                                  "alpha weight=4 skipped: backend stock has no limits or scheduler",
                                  "alpha reservation_iops=150 skipped: backend stock has no limits or scheduler",
                                  "alpha vbd_iops_limits=100,100 skipped: backend stock has no limits or scheduler",
                                  "alpha vbd_bps_limits=0,1048576 skipped: backend stock has no limits or scheduler",
                                  "- iops_limit=300 skipped: backend stock has no limits or scheduler"])
        self.assertFalse(os.path.exists(os.path.join(self.root, "rblkctl-calls")))

    def test_domain_settings_go_through_rblkctl_like_limits(self):
        make_tree(self.root)
        rc, stdout, stderr = self.bash("set_backend_key alpha 1 51728 weight 4\n"
                                       "set_backend_key alpha 1 51728 reservation_bps 2097152\n"
                                       "set_backend_key alpha 1 51728 iops_limit 60\n"
                                       "set_backend_key alpha 1 51728 vbd_weights 2,5\n")
        self.assertEqual(rc, 0, stdout + stderr)
        self.assertEqual(read_text(os.path.join(self.root, "rblkctl-calls")).splitlines(),
                         ["rblkctl set 1 weight=4", "rblkctl set 1 reservation_bps=2097152", "rblkctl set 1 iops=60"])
        self.assertEqual([line.split()[1:] for line in self.out("limits.log").splitlines()],
                         [["alpha", "weight", "4"], ["alpha", "reservation_bps", "2097152"],
                          ["alpha", "iops_limit", "60"], ["alpha", "xvdb.weight", "2"], ["alpha", "xvdc.weight", "5"]])
        rc, stdout, _ = self.bash("set_backend_key alpha 9 51728 weight 4\n")
        self.assertEqual(rc, 1)
        self.assertIn("FAIL: rblkctl set 9 weight=4: rblkctl: refused", stdout)

    def test_snapshot_names_the_second_vbd_and_reads_the_scheduler_files(self):
        make_tree(self.root)
        rc, stdout, stderr = self.bash("snapshot || true   # its status is that of its last test\n")
        self.assertEqual(rc, 0, stderr)
        lines = stdout.splitlines()
        self.assertIn("alpha vbd-1-51728/statistics/rd_req 8", lines)
        self.assertIn("alpha.xvdc vbd-1-51744/statistics/rd_req 4", lines)
        self.assertIn("alpha vbd-1-51728/sched/weight 100", lines)
        self.assertIn("alpha.xvdc vbd-1-51744/sched/group vdb", lines)
        self.assertIn("alpha domains/1/sched_holds 12", lines)
        self.assertIn("group vdb/window 16", lines)
        # The first vbd's statistics once, as before.
        self.assertEqual(sum(1 for line in lines if line.startswith("alpha vbd-1-51728/statistics/")), 7)
        self.assertEqual(sum(1 for line in lines if "/statistics/" in line), 21)

    def sampled(self, backend):
        rc, stdout, stderr = self.bash("sampler & pid=$!\nsleep 0.4\nkill $pid\n", backend=backend)
        self.assertEqual(rc, 0, stderr)
        # Files that are not there (stock has no rblkback files) cost no line on dom0's console.
        self.assertEqual(stderr, "")
        rows = [line.split(",") for line in stdout.splitlines()]
        self.assertGreaterEqual(len(rows), 3, stdout)
        self.assertTrue(all(len(r) == len(rows[0]) for r in rows), stdout)
        return rows[0], rows[1:]

    def test_the_sampler_adds_the_vbd_and_group_columns_when_they_exist(self):
        make_tree(self.root)
        header, rows = self.sampled("rblkback")
        self.assertEqual(header[-14:], [
            "alpha.xvdc.rd_req", "alpha.xvdc.wr_req",
            "alpha.xvdb.dispatched", "alpha.xvdb.held_by_scheduler", "alpha.xvdb.held_by_limit",
            "alpha.xvdc.dispatched", "alpha.xvdc.held_by_scheduler", "alpha.xvdc.held_by_limit",
            "beta.xvdb.dispatched", "beta.xvdb.held_by_scheduler", "beta.xvdb.held_by_limit",
            "group:vdb:in_flight", "group:vdb:dispatched", "group:vdb:held"])
        row = dict(zip(header, rows[0]))
        self.assertEqual((row["alpha.rd_req"], row["alpha.xvdc.rd_req"], row["alpha.held_us"]), ("8", "4", "13"))
        self.assertEqual((row["alpha.xvdc.held_by_limit"], row["group:vdb:in_flight"]), ("7", "3"))
        # Stock: the columns it always had and the second vbd's counters, nothing else.
        self.tearDown()
        self.setUp()
        make_tree(self.root, rblkback=False)
        header, rows = self.sampled("stock")
        self.assertEqual(header[-3:], ["cpu_busy_ticks", "alpha.xvdc.rd_req", "alpha.xvdc.wr_req"])
        self.assertEqual(dict(zip(header, rows[0]))["alpha.held_us"], "NA")


if __name__ == "__main__":
    unittest.main()
