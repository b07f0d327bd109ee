import pytest


@pytest.fixture
def run_commits(django_capture_on_commit_callbacks):
    """Run a block and then its on-commit callbacks (the eager send tasks), as a real commit would."""
    def runner(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)
    return runner
