"""The Gradio tabs. Each module builds one tab (`build()`), wiring components to one imgai call per
handler. No business logic here: imgai errors become `gr.Error` through `guard`."""
