"""The bundled runtime: run an event-sourced service from typed definitions.

Never imports any other stormgen package. See docs/runtime.md.
"""

from stormgen.runtime.aggregate import Aggregate, Loaded, id_text
from stormgen.runtime.application import (
    FAILURES_STREAM,
    FORGOTTEN,
    SYSTEM_STREAM,
    Application,
    CommandResult,
)
from stormgen.runtime.clock import Clock, SystemClock, TestClock
from stormgen.runtime.codec import dumps, from_data, loads, schema_hash, to_data
from stormgen.runtime.commands import COMMAND_SENT
from stormgen.runtime.consumers import FAILURE, RESOLVED, RetrySettings
from stormgen.runtime.dispatch import key_for, on_command, on_event
from stormgen.runtime.envelope import NewEvent, RecordedEvent
from stormgen.runtime.errors import StoreError, StormgenRuntimeError
from stormgen.runtime.idempotency import ClientKey
from stormgen.runtime.lookups import Lookups
from stormgen.runtime.merge import MergeError, MergeReport, merge
from stormgen.runtime.messages import REDACTED, Command, Envelope, Event, Message, MessageInfo, info
from stormgen.runtime.policies import (
    FakeChoiceError,
    FakePort,
    Issued,
    Policy,
    Port,
    command_id,
    copy_fields,
    fake_choices,
    steer_fakes,
)
from stormgen.runtime.processes import Instance, Process, Step, on_timer
from stormgen.runtime.rejections import (
    AlreadyExists,
    DecodeError,
    DomainError,
    KeyReused,
    NotFound,
    Rejected,
    UnknownCommand,
    UnknownEventType,
    UpcastError,
    VersionConflict,
    require,
)
from stormgen.runtime.store import EventStore, open_store
from stormgen.runtime.unset import UNSET, UnsetFieldError, is_unset, present
from stormgen.runtime.upcasting import Registry
from stormgen.runtime.views import DELETE, Delete, View

__all__ = [
    "COMMAND_SENT",
    "DELETE",
    "FAILURE",
    "FAILURES_STREAM",
    "FORGOTTEN",
    "REDACTED",
    "RESOLVED",
    "SYSTEM_STREAM",
    "UNSET",
    "Aggregate",
    "AlreadyExists",
    "Application",
    "ClientKey",
    "Clock",
    "Command",
    "CommandResult",
    "DecodeError",
    "Delete",
    "DomainError",
    "Envelope",
    "Event",
    "EventStore",
    "FakeChoiceError",
    "FakePort",
    "Instance",
    "Issued",
    "KeyReused",
    "Loaded",
    "Lookups",
    "MergeError",
    "MergeReport",
    "Message",
    "MessageInfo",
    "NewEvent",
    "NotFound",
    "Policy",
    "Port",
    "Process",
    "RecordedEvent",
    "Registry",
    "Rejected",
    "RetrySettings",
    "Step",
    "StoreError",
    "StormgenRuntimeError",
    "SystemClock",
    "TestClock",
    "UnknownCommand",
    "UnknownEventType",
    "UnsetFieldError",
    "UpcastError",
    "VersionConflict",
    "View",
    "command_id",
    "copy_fields",
    "dumps",
    "fake_choices",
    "from_data",
    "id_text",
    "info",
    "is_unset",
    "key_for",
    "loads",
    "merge",
    "on_command",
    "on_event",
    "on_timer",
    "open_store",
    "present",
    "require",
    "schema_hash",
    "steer_fakes",
    "to_data",
]
