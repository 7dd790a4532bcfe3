"""The Gradio tabs. Each module builds one tab (`build()`), wiring components to one imgai call per
handler. No business logic here: imgai errors become `gr.Error` through `guard`."""

import warnings

# gradio 6.17.3's queue route reads starlette's deprecated HTTP_422_UNPROCESSABLE_ENTITY on every
# request (gradio/routes.py), and gradio's own catch_warnings blocks reset "once", so the console
# got one warning per event (~170 a session). Not ours to fix: ignore exactly that one.
warnings.filterwarnings("ignore", message="'HTTP_422_UNPROCESSABLE_ENTITY' is deprecated",
                        module="gradio.routes")   # a StarletteDeprecationWarning (a UserWarning subclass)
