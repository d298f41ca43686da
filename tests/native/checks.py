"""What the native live tests (tests/native/test_*_live.py) report with: a
failed check raises Failure with what was expected; a passed one prints it."""


class Failure(Exception):
    pass


def ok(msg):
    print("ok    %s" % msg, flush=True)


def expect(cond, msg):
    if not cond:
        raise Failure(msg)
    ok(msg)
