"""The desktop viewer (PyQt6).

``depthapp.gui.state`` (the model), ``events``, ``sources`` and ``render`` import no Qt; they
run anywhere, tests drive them without a window. The widgets (``main_window``, ``image_view``,
``param_panel``, ``cloud_view``, ``dialogs``, ``worker``, ``live``) import PyQt6 and are
loaded only when a window is made (``depthapp gui``, :func:`depthapp.gui.app.run_viewer`).
"""
