"""Resources: releases in reverse order, never hiding the error that unwinds the stack."""

from __future__ import annotations

import logging

import pytest

from koji_adjutant.resources import Resources


def failing(message: str):
    def step():
        raise RuntimeError(message)
    return step


def test_releases_run_in_reverse_order():
    done = []
    with Resources() as resources:
        resources.release("first", lambda: done.append("first"))
        resources.release("second", lambda: done.append("second"))
    assert done == ["second", "first"]


def test_a_failing_release_after_a_success_is_the_error():
    with pytest.raises(RuntimeError, match="could not expire"):
        with Resources() as resources:
            resources.release("expire the record", failing("could not expire"))


def test_a_failing_release_during_a_failure_is_logged_and_the_first_error_goes_on(caplog):
    done = []
    with pytest.raises(ValueError, match="the build failed"):
        with Resources() as resources:
            resources.release("close the logs", lambda: done.append("logs"))
            resources.release("expire the record", failing("hub gone"))
            raise ValueError("the build failed")
    assert done == ["logs"]          # the releases before it still ran
    assert "could not expire the record after the failure (the build failed): hub gone" in caplog.text
    assert caplog.records[0].levelno == logging.WARNING


def test_on_failure_undoes_only_a_failure():
    undone = []
    with Resources() as resources:
        resources.on_failure("remove the image", lambda: undone.append("image"))
    assert undone == []
    with pytest.raises(KeyError):
        with Resources() as resources:
            resources.on_failure("remove the image", lambda: undone.append("image"))
            raise KeyError("x")
    assert undone == ["image"]
