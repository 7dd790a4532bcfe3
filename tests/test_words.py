"""One message source for two places: the same error reads in flags in a terminal and in fields and
buttons in the app; a job worker stores the markers so whoever reads the job table renders them."""

import pytest

from imgai import registry, words
from imgai.errors import StateError
from imgai.words import render, speaking, term


def test_a_message_renders_for_the_place_that_shows_it():
    message = f"no default model; name one ({term('model')}) or restore the demo ({term('restore-demo')})"
    with speaking(words.CLI):
        assert render(message) == ("no default model; name one (--model ID) or restore the demo "
                                   "(`imgai models demo`)")
    with speaking(words.UI):
        text = render(message)
        assert "--" not in text and "`imgai" not in text
        assert "the **Model** field" in text and "**Restore the demo model** in the **Convert** tab" in text
    with speaking(words.RAW):
        assert render(message) == message


def test_errors_render_when_shown():
    exc = StateError(f"cannot do it; {term('force')} overrides")
    with speaking(words.CLI):
        assert str(exc) == "cannot do it; --force overrides"
    with speaking(words.UI):
        assert str(exc) == "cannot do it; the **Force** box overrides"


def test_an_unknown_term_fails_loudly():
    with pytest.raises(KeyError, match="no term 'modle'"):
        term("modle")


def test_stored_markers_render_when_read(imgai_home):
    """What a job worker wrote (markers kept) reads in the reader's words."""
    from imgai import jobs

    job = jobs.submit("selftest", {"steps": 1, "fail": f"broken; see {term('jobs-list')}"}, start=False)
    jobs.finish(job.id, jobs.FAILED, error=f"broken; see {term('jobs-list')}")
    with speaking(words.CLI):
        assert jobs.get(job.id).error == "broken; see `imgai jobs list`"
    with speaking(words.UI):
        assert jobs.get(job.id).error == "broken; see the job tables"
    assert registry.list_models() == []
