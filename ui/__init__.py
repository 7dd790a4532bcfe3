"""The Gradio tabs. Each module builds one tab (`build()`), wiring components to one imgai call per
handler. No business logic here: imgai errors become `gr.Error` through `guard`."""

import importlib.abc
import importlib.machinery
import sys
import warnings

# gradio 6.17.3's queue route reads starlette's deprecated HTTP_422_UNPROCESSABLE_ENTITY on every
# request (gradio/routes.py), and gradio's own catch_warnings blocks reset "once", so the console
# got one warning per event (~170 a session). Not ours to fix: ignore exactly that one.
warnings.filterwarnings("ignore", message="'HTTP_422_UNPROCESSABLE_ENTITY' is deprecated",
                        module="gradio.routes")   # a StarletteDeprecationWarning (a UserWarning subclass)


class _SkipPyiRewrite(importlib.abc.MetaPathFinder):
    """gradio 6.17.3 rewrites its own type stubs as it is imported: for each of its ~80 component
    classes, `gradio.component_meta.create_or_modify_pyi` reads the class's source file, parses it,
    renders a Jinja2 template and compares it with the installed .pyi. That is 1.2-1.5 s of the
    ~3.5 s `import gradio` takes on 2 cores, paid by every `python app.py` (bench/app_start.py), and
    it only serves type checkers. Imported before gradio (app.py imports `ui` first), this finder
    lets gradio.component_meta load as usual and then makes that one function a no-op. It steps aside
    after that one module; if gradio is imported first, or moves the function, nothing changes."""

    MODULE = "gradio.component_meta"

    def find_spec(self, name, path, target=None):
        if name != self.MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            load = spec.loader.exec_module

            def exec_module(module):
                load(module)
                if callable(getattr(module, "create_or_modify_pyi", None)):
                    module.create_or_modify_pyi = _no_stub_rewrite

            spec.loader.exec_module = exec_module
        return spec


def _no_stub_rewrite(*args, **kwargs) -> None:
    """gradio.component_meta.create_or_modify_pyi, skipped (see _SkipPyiRewrite)."""


if "gradio" not in sys.modules:
    sys.meta_path.insert(0, _SkipPyiRewrite())
