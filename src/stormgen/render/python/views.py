"""The views module of a context: one row class and one base class per view.

A column without a default is ``T | None = None``; an update reading it goes through
``_value``, defined in the module when one does. ``by EXPR`` becomes a ``key_of_*``
method (docs/language.md); so does ``if C``, whose key is none (the event skipped) unless
C holds.
"""

from __future__ import annotations

from dataclasses import replace

from stormgen.model import types as t
from stormgen.model.nodes import Context, Event, Name, View
from stormgen.model.scope import EVENT_KINDS
from stormgen.render.python.expressions import CompileError
from stormgen.render.python.files import Built, File, Template, file, module_path
from stormgen.render.python.literals import py_description, py_docstring, py_str, py_tuple
from stormgen.render.python.modules import Module
from stormgen.render.python.names import Namespace, field_name, snake_case
from stormgen.render.python.parts import RUNTIME, Builder, Parts, override
from stormgen.render.python.viewmodels import ClassVM, UpdateVM, ViewVM


class ViewBuilder(Builder):
    """Builds the views module of each context."""

    def __init__(self, parts: Parts) -> None:
        super().__init__(parts)
        self.needs_value = False  # the module being built reads a column that may be None

    def build(self, context: Context) -> Built[tuple[ViewVM, ...]]:
        """The views module of a context and a user file per view."""
        if not context.views:
            return Built((), ())
        mod = self.plan.module(f"{self.plan.context_packages[context.name]}.views")
        mod.std("dataclasses", "dataclass")
        mod.std(RUNTIME, "View")
        if any(v.handlers for v in context.views):
            for name in ("Delete", "Envelope", "on_event"):
                mod.std(RUNTIME, name)
        self.needs_value = False
        vms = tuple(self.view(context, v, mod) for v in context.views)
        value_reader = mod.define("_value", "_value") if self.needs_value else ""
        if value_reader:
            mod.std("typing", "TypeVar")
        typevar = mod.define("_T", "_T") if value_reader else ""
        module = file(
            module_path(mod.dotted),
            Template.VIEWS,
            doc=py_docstring(f"The views (read models) of the {context.name} context."),
            imports=tuple(mod.import_lines()),
            views=vms,
            value_reader=value_reader,
            typevar=typevar,
        )
        users = (self._user_file(v, vm.row.name) for v, vm in zip(context.views, vms, strict=True))
        return Built(vms, (module, *users))

    def _user_file(self, view: View, row: str) -> File:
        runtime = "from stormgen.runtime import Delete, Envelope, Event"
        signature = "def update(self, row: {0}, event: Event, envelope: Envelope) -> {0} | Delete:"
        example = override(
            (runtime, f"from {self.plan.of(view).row.module} import {row}"),
            signature.format(row),
            "return super().update(row, event, envelope)",
        )
        doc = f"The view {view.name}: override how an event updates a row here."
        return self.parts.user_file(view, doc, example)

    def view(self, context: Context, view: View, mod: Module) -> ViewVM:
        key_vm = self.parts.fields((view.key,), context, mod)[0]
        columns = []
        for vm in self.parts.fields(view.fields, context, mod):
            if vm.default is None:
                # A column without a default starts as none (docs/language.md).
                vm = replace(vm, annotation=f"{vm.annotation} | None", default="None")
            columns.append(vm)
        row_name = self.plan.of(view).row.name
        row = ClassVM(row_name, "", (key_vm, *columns))
        handlers = []
        event_classes: list[str] = []
        methods = Namespace()
        # Columns without a default are None until set; reading one goes through _value.
        unset = frozenset(f.name for f in view.fields if f.default is None and not f.type.optional)
        for on in view.handlers:
            found = self.parts.scope.resolve(context, on.event.name, EVENT_KINDS)
            if found is None or not isinstance(found.element, Event):
                raise CompileError(f"{on.event.loc}: unknown event '{on.event.name}'")
            event = found.element
            cls = mod.use(self.plan.of(event).cls, found.context.name if found.context else "")
            if cls not in event_classes:
                event_classes.append(cls)
            key = None
            # With an `if`, the key method also holds the key an `on` without `by` takes:
            # the event's field (or its aggregate's id) named like the key (check E303).
            by = (
                on.by
                if on.by is not None or on.condition is None
                else Name((view.key.name,), on.loc)
            )
            if by is not None:
                key_env = t.view_env(view, event, self.parts.scope, row=False)
                kc = self.parts.event_compiler(key_env, mod, found.owner)
                key = kc.compile(by, self.parts.type_of(view.key, context))
                self.parts.finish(kc, mod)
            condition = None
            if on.condition is not None:
                test_env = t.view_env(view, event, self.parts.scope, test=True)
                tc = self.parts.event_compiler(test_env, mod, found.owner)
                condition = tc.compile(on.condition, t.BOOL)
                self.parts.finish(tc, mod)
            updates: tuple[tuple[str, str], ...] = ()
            if not on.delete:
                env = t.view_env(view, event, self.parts.scope, on=on)
                required = mod.define("_value", "_value")
                c = self.parts.event_compiler(
                    env, mod, found.owner, state="row", unset=unset, required=required
                )
                updates = self.parts.updates(
                    c, env, on.assignments, view.fields, context, "row", frozenset()
                )
                self.parts.finish(c, mod)
                self.needs_value |= "required" in c.uses
                if updates:
                    mod.std("dataclasses", "replace")
            method = methods.claim(f"on_{snake_case(event.name)}", id(on))
            key_method = ""
            if key is not None:
                mod.std(RUNTIME, "key_for")
                key_method = methods.claim(f"key_of_{snake_case(event.name)}", ("key", id(on)))
            handlers.append(
                UpdateVM(
                    cls, method, updates, on.delete, key, key_method=key_method, condition=condition
                )
            )
        pii = sorted(field_name(f.name) for f in view.fields if f.pii)
        user = self.plan.of(view).user
        return ViewVM(
            qualified=py_str(f"{context.name}.{view.name}"),
            base=self.plan.of(view).base.name,
            docstring=py_description(view.description),
            row=row,
            key=py_str(field_name(view.key.name)),
            pii="frozenset({" + ", ".join(py_str(p) for p in pii) + "})" if pii else "frozenset()",
            event_tuple=py_tuple(event_classes),
            handlers=tuple(handlers),
            order=py_tuple([f"({py_str(o.field)}, {o.desc})" for o in view.order])
            if view.order
            else "",
            user_class=user.name,
            user_module=user.module,
        )
