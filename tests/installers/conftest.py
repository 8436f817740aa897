"""The fixture projects are data: collecting their modules (as doctests) would put them on
sys.path, and this interpreter would then import them from here, not from the tests' copies."""

collect_ignore = ["fixtures"]
