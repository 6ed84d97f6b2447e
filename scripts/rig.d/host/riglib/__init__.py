"""The host side of rblkback's QEMU/Xen rig (scripts/rig runs riglib/__main__.py; the
subcommands are in cli.py). One module per concept, each importing only those above it:

  common    paths (RIG_D, REPO_ROOT), MIB, read_text/read_bytes/read_lines
  disk      the shared data disk: DOM0_DATA_DISK, MAX_DOMAINS, write_data_disk
  initrd    a domU's initrd: the base initramfs plus an overlay archive of the rig's files
  scenario  tests/scenarios/*.toml and the workload templates: parsing and validation,
            ScenarioError, the data disk's capacity ([device])
  compile   scenarios into what dom0 runs (riglib compile, riglib device)
  checks    a scenario's [assert]s evaluated on a run's summary (riglib check)
  collect   after the boot: results and dom0's records into summary.json (riglib collect)
  drivers   what the host sides of the dom0 drivers (functional.py, hostile.py, bench.py) share
  cli       the command line

This file imports nothing: import a name from the module that owns it.
"""
