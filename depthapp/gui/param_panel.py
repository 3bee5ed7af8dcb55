"""The parameter panel, generated from a backend's declared :class:`~depthapp.params.Parameter`s.

Bounded ints get a slider with a spin box, floats a spin box (and a slider when bounded), bools
a check box, choices a combo box; each control's tooltip is the parameter's help, its range and
default. Nothing here knows any particular backend.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout,
                             QLabel, QSlider, QSpinBox, QWidget)

from ..params import Parameter

_INT_LIMIT = 2_000_000_000
_SLIDER_STEPS = 1000  # float sliders and very long int ranges are mapped onto this many steps


def _tooltip(parameter: Parameter) -> str:
    lines = [parameter.help]
    if parameter.kind in ("int", "float"):
        low = "-inf" if parameter.minimum is None else f"{parameter.minimum:g}"
        high = "inf" if parameter.maximum is None else f"{parameter.maximum:g}"
        lines.append(f"range {low} .. {high}" + (", odd values only" if parameter.odd else ""))
    elif parameter.kind == "choice":
        lines.append("one of " + ", ".join(map(str, parameter.choices)))
    lines.append(f"default {parameter.default}   (CLI: {parameter.flag})")
    return "\n".join(lines)


def _label(name: str) -> str:
    return name.replace("_", " ")


class _NumberControl(QWidget):
    """A spin box, with a slider when the range is bounded."""

    changed = pyqtSignal(object)

    def __init__(self, parameter: Parameter, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.parameter = parameter
        is_int = parameter.kind == "int"
        self.spin = QSpinBox() if is_int else QDoubleSpinBox()
        low = parameter.minimum if parameter.minimum is not None else -_INT_LIMIT
        high = parameter.maximum if parameter.maximum is not None else _INT_LIMIT
        if is_int:
            self.spin.setRange(int(low), int(high))
            self.spin.setSingleStep(int(parameter.step or (2 if parameter.odd else 1)))
        else:
            step = parameter.step or (abs(high - low) / 100.0 if parameter.maximum is not None
                                      and parameter.minimum is not None else 0.1)
            decimals = max(2, min(6, len(f"{step:g}".split(".")[-1]) if "." in f"{step:g}" else 2))
            self.spin.setDecimals(decimals)
            self.spin.setRange(float(low), float(high))
            self.spin.setSingleStep(step)
        self.spin.setKeyboardTracking(False)  # typing "120" must not compute 1, 12, 120
        self.slider: Optional[QSlider] = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        if parameter.minimum is not None and parameter.maximum is not None:
            self.slider = QSlider(Qt.Orientation.Horizontal)
            self.slider.setRange(0, self._slider_steps())
            self.slider.setMinimumWidth(80)
            self.slider.valueChanged.connect(self._slid)
            layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self.spin.valueChanged.connect(self._spun)
        self.set_value(parameter.default)

    def _slider_steps(self) -> int:
        """Slider positions: one per allowed int value when there are few, else a fine grid."""
        p = self.parameter
        unit = 2 if p.odd else 1
        if p.kind == "int" and (p.maximum - p.minimum) / unit <= _SLIDER_STEPS:
            return int((p.maximum - p.minimum) // unit)
        return _SLIDER_STEPS

    def _exact(self) -> bool:
        p = self.parameter
        return p.kind == "int" and (p.maximum - p.minimum) / (2 if p.odd else 1) <= _SLIDER_STEPS

    def _to_slider(self, value: float) -> int:
        p = self.parameter
        if self._exact():
            return int(round((value - p.minimum) / (2 if p.odd else 1)))
        return int(round((value - p.minimum) / (p.maximum - p.minimum) * _SLIDER_STEPS))

    def _from_slider(self, position: int) -> float:
        p = self.parameter
        if self._exact():
            return p.minimum + position * (2 if p.odd else 1)
        return p.minimum + position / _SLIDER_STEPS * (p.maximum - p.minimum)

    def _coerce(self, value: float) -> Any:
        p = self.parameter
        if p.kind == "int":
            value = int(round(value))
            if p.odd and value % 2 == 0:
                value = value + 1 if p.maximum is None or value + 1 <= p.maximum else value - 1
            return value
        return float(value)

    def value(self) -> Any:
        return self._coerce(self.spin.value())

    def set_value(self, value: Any) -> None:
        for widget in (self.spin, self.slider):
            if widget is not None:
                widget.blockSignals(True)
        self.spin.setValue(value)
        if self.slider is not None:
            self.slider.setValue(self._to_slider(value))
        for widget in (self.spin, self.slider):
            if widget is not None:
                widget.blockSignals(False)

    def _spun(self, value) -> None:
        coerced = self._coerce(value)
        if coerced != value:
            self.set_value(coerced)
        if self.slider is not None:
            self.slider.blockSignals(True)
            self.slider.setValue(self._to_slider(coerced))
            self.slider.blockSignals(False)
        self.changed.emit(coerced)

    def _slid(self, position: int) -> None:
        value = self._coerce(self._from_slider(position))
        self.spin.blockSignals(True)
        self.spin.setValue(value)
        self.spin.blockSignals(False)
        self.changed.emit(value)


class ParameterPanel(QWidget):
    """Controls for ``parameters``; ``value_changed(name, value)`` on every user edit."""

    value_changed = pyqtSignal(str, object)

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.controls: dict[str, QWidget] = {}
        self.parameters: tuple[Parameter, ...] = ()

    def build(self, parameters: Sequence[Parameter], values: dict[str, Any]) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.controls.clear()
        self.parameters = tuple(parameters)
        if not parameters:
            self.form.addRow(QLabel("This backend has no parameters."))
            return
        for parameter in parameters:
            control = self._make_control(parameter)
            control.setToolTip(_tooltip(parameter))
            label = QLabel(_label(parameter.name))
            label.setToolTip(_tooltip(parameter))
            self.form.addRow(label, control)
            self.controls[parameter.name] = control
        self.set_values(values)

    def _make_control(self, parameter: Parameter) -> QWidget:
        name = parameter.name
        if parameter.kind == "bool":
            box = QCheckBox()
            box.toggled.connect(lambda checked, name=name: self.value_changed.emit(name, bool(checked)))
            return box
        if parameter.kind == "choice":
            combo = QComboBox()
            for choice in parameter.choices:
                combo.addItem(str(choice), choice)
            combo.currentIndexChanged.connect(
                lambda index, combo=combo, name=name: self.value_changed.emit(name, combo.itemData(index)))
            return combo
        control = _NumberControl(parameter)
        control.changed.connect(lambda value, name=name: self.value_changed.emit(name, value))
        return control

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` without emitting ``value_changed``."""
        for parameter in self.parameters:
            if parameter.name not in values:
                continue
            control = self.controls[parameter.name]
            value = values[parameter.name]
            control.blockSignals(True)
            try:
                if isinstance(control, QCheckBox):
                    control.setChecked(bool(value))
                elif isinstance(control, QComboBox):
                    index = next((i for i in range(control.count())
                                  if str(control.itemData(i)) == str(value)), 0)
                    control.setCurrentIndex(index)
                else:
                    control.set_value(value)
            finally:
                control.blockSignals(False)

    def values(self) -> dict[str, Any]:
        result = {}
        for name, control in self.controls.items():
            if isinstance(control, QCheckBox):
                result[name] = control.isChecked()
            elif isinstance(control, QComboBox):
                result[name] = control.currentData()
            else:
                result[name] = control.value()
        return result
