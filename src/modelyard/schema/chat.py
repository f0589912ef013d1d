"""The Chat Completions request, decoded and validated from bytes in one pass.

msgspec checks types and ranges while it decodes; `parse_chat_request` then checks what
spans fields (a `tool_choice` that names a given tool, ...) and turns every failure into an
`InvalidRequest` whose `param` names the offending field. Unknown top-level fields are
ignored, as the OpenAI and OpenRouter APIs do.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from modelyard.catalog.parameters import SAMPLING_FIELDS
from modelyard.errors import InvalidRequest
from modelyard.schema.json_depth import check_depth

Unit = Annotated[float, msgspec.Meta(ge=0, le=1)]
Penalty = Annotated[float, msgspec.Meta(ge=-2, le=2)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
# Token ids are int32 in every tokenizer we call; OpenAI allows at most 300 biased tokens.
MAX_TOKEN_ID = 2**31 - 1
MAX_LOGIT_BIAS = 300
FunctionName = Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z0-9_.-]{1,64}$")]


class CacheControl(msgspec.Struct, frozen=True):
    type: Literal["ephemeral"] = "ephemeral"
    ttl: str | None = None


class TextPart(msgspec.Struct, tag_field="type", tag="text", frozen=True):
    text: str
    cache_control: CacheControl | None = None


class ImageUrl(msgspec.Struct, frozen=True):
    url: Annotated[str, msgspec.Meta(min_length=1)]
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(msgspec.Struct, tag_field="type", tag="image_url", frozen=True):
    image_url: ImageUrl


class FileData(msgspec.Struct, frozen=True):
    filename: str | None = None
    file_data: str | None = None
    file_id: str | None = None


class FilePart(msgspec.Struct, tag_field="type", tag="file", frozen=True):
    file: FileData


Part = TextPart | ImagePart | FilePart
Content = str | list[Part]


class FunctionCall(msgspec.Struct, frozen=True):
    name: str
    arguments: str = ""


class ToolCall(msgspec.Struct, frozen=True):
    id: str
    function: FunctionCall
    type: Literal["function"] = "function"


class SystemMessage(msgspec.Struct, tag_field="role", tag="system", frozen=True):
    content: Content
    name: str | None = None


class DeveloperMessage(msgspec.Struct, tag_field="role", tag="developer", frozen=True):
    content: Content
    name: str | None = None


class UserMessage(msgspec.Struct, tag_field="role", tag="user", frozen=True):
    content: Content
    name: str | None = None


class AssistantMessage(msgspec.Struct, tag_field="role", tag="assistant", frozen=True):
    content: Content | None = None
    tool_calls: list[ToolCall] | None = None
    name: str | None = None
    reasoning: str | None = None


class ToolMessage(msgspec.Struct, tag_field="role", tag="tool", frozen=True):
    content: Content
    tool_call_id: str


Message = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage


class FunctionDef(msgspec.Struct, frozen=True):
    name: FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(msgspec.Struct, frozen=True):
    function: FunctionDef
    type: Literal["function"] = "function"
    cache_control: CacheControl | None = None


class NamedFunction(msgspec.Struct, frozen=True):
    name: str


class NamedToolChoice(msgspec.Struct, frozen=True):
    function: NamedFunction
    type: Literal["function"] = "function"


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class TextFormat(msgspec.Struct, tag_field="type", tag="text", frozen=True):
    pass


class JsonObjectFormat(msgspec.Struct, tag_field="type", tag="json_object", frozen=True):
    pass


class JsonSchemaSpec(msgspec.Struct, frozen=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class JsonSchemaFormat(msgspec.Struct, tag_field="type", tag="json_schema", frozen=True):
    json_schema: JsonSchemaSpec


ResponseFormat = TextFormat | JsonObjectFormat | JsonSchemaFormat


class StreamOptions(msgspec.Struct, frozen=True):
    include_usage: bool = False


class Reasoning(msgspec.Struct, frozen=True):
    effort: Literal["minimal", "low", "medium", "high"] | None = None
    max_tokens: PositiveInt | None = None
    exclude: bool | None = None
    enabled: bool | None = None


class ExtendedThinking(msgspec.Struct, frozen=True):
    enabled: bool = False
    budget_tokens: PositiveInt | None = None
    include_reasoning: bool | None = None


class MaxPrice(msgspec.Struct, frozen=True):
    prompt: Annotated[float, msgspec.Meta(ge=0)] | None = None
    completion: Annotated[float, msgspec.Meta(ge=0)] | None = None


class ProviderPreferences(msgspec.Struct, frozen=True):
    order: list[str] | None = None
    allow_fallbacks: bool = True
    require_parameters: bool = False
    data_collection: Literal["allow", "deny"] | None = None
    zdr: bool | None = None
    only: list[str] | None = None
    ignore: list[str] | None = None
    quantizations: list[str] | None = None
    sort: Literal["price", "throughput", "latency"] | None = None
    max_price: MaxPrice | None = None


class ChatRequest(msgspec.Struct, frozen=True):
    messages: Annotated[list[Message], msgspec.Meta(min_length=1)]
    model: Annotated[str, msgspec.Meta(min_length=1)] | None = None
    models: list[Annotated[str, msgspec.Meta(min_length=1)]] | None = None
    # sampling
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Unit | None = None
    top_k: Annotated[int, msgspec.Meta(ge=0)] | None = None
    min_p: Unit | None = None
    top_a: Unit | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    repetition_penalty: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    seed: int | None = None
    max_tokens: PositiveInt | None = None
    max_completion_tokens: PositiveInt | None = None
    stop: str | Annotated[list[str], msgspec.Meta(max_length=4)] | None = None
    logit_bias: dict[str, Annotated[float, msgspec.Meta(ge=-100, le=100)]] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=1)] | None = None
    # tools and structured output
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    # transport and attribution
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    session_id: str | None = None
    reasoning: Reasoning | None = None
    extended_thinking: ExtendedThinking | None = None
    provider: ProviderPreferences | None = None
    # Automatic prompt-cache breakpoints (set from the X-Prompt-Caching header).
    prompt_caching: bool = True

    @property
    def output_limit(self) -> int | None:
        """`max_completion_tokens` wins over the older `max_tokens`, as in the OpenAI API."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def model_names(self) -> list[str]:
        """The model asked for, then each `models` fallback, without repeats."""
        names = [self.model] if self.model else []
        for name in self.models or ():
            if name not in names:
                names.append(name)
        return names

    def sent_parameters(self) -> set[str]:
        """Names of the optional parameters the client actually set."""
        sent = {name for name in _PARAMETER_FIELDS if getattr(self, name) is not None}
        if self.max_completion_tokens is not None:
            sent.add("max_tokens")
        if self.response_format is not None and not isinstance(self.response_format, TextFormat):
            sent.add("response_format")
        return sent


# Optional request fields that are model parameters (as in `supported_parameters`).
_PARAMETER_FIELDS = (
    *SAMPLING_FIELDS,
    "max_tokens",
    "stop",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
)

_decoder = msgspec.json.Decoder(ChatRequest)


def parse_chat_request(body: bytes, *, model_override: str | None = None) -> ChatRequest:
    """Decode and validate; `model_override` pins the model (a model resource's own model)."""
    check_depth(body)
    try:
        request = _decoder.decode(body)
    except RecursionError as exc:  # depth is checked above; this is the last line of defence
        raise InvalidRequest("The request body nests JSON too deeply.") from exc
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from exc
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid UTF-8: {exc.reason}.") from exc
    if model_override is not None:
        request = msgspec.structs.replace(request, model=model_override, models=None)
    _check(request)
    return request


def decode_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, for a wire format validated after decoding (its depth
    checked first), with the same 400s as `parse_chat_request`."""
    check_depth(body)
    try:
        value = msgspec.json.decode(body)
    except RecursionError as exc:  # depth is checked above; this is the last line of defence
        raise InvalidRequest("The request body nests JSON too deeply.") from exc
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid UTF-8: {exc.reason}.") from exc
    if not isinstance(value, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return value


def check_chat_request(request: ChatRequest) -> None:
    """The checks across fields of `parse_chat_request`, for a request built from another
    wire format (schema/messages_*.py); the per-field ones are that format's decoder's."""
    _check(request)


def validation_error(exc: msgspec.ValidationError, where: str = "") -> InvalidRequest:
    """Turn msgspec's "Expected `int`, got `str` - at `$.messages[0].role`" into a 400.

    `where` is the path of the value validated, for a body validated in pieces
    (schema/responses_items.py validates each input item on its own: "input[2]")."""
    message, sep, at = str(exc).rpartition(" - at `$")
    if not sep:
        message, at = str(exc), ""
    # "[...]" marks a dict key in msgspec paths; the dict's own name is what clients know.
    param = (where + at.rstrip("`")).lstrip(".").replace("[...]", "")
    if message.startswith("Object missing required field"):
        field = message.split("`")[1]
        param = f"{param}.{field}" if param else field
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param)
    if not param:
        return InvalidRequest(f"The request body must be a JSON object: {message}.")
    return InvalidRequest(f"Invalid value for '{param}': {message}.", param=param)


def _check(request: ChatRequest) -> None:
    if not request.model_names():
        raise InvalidRequest("Missing required parameter: 'model'.", param="model")
    for index, message in enumerate(request.messages):
        _check_message(index, message)
    _check_tools(request)
    _check_response_format(request)
    _check_logit_bias(request.logit_bias)
    if request.top_logprobs and not request.logprobs:
        raise InvalidRequest("'top_logprobs' requires 'logprobs' to be true.", param="top_logprobs")
    if request.stream_options is not None and not request.stream:
        raise InvalidRequest(
            "'stream_options' is only allowed when 'stream' is true.", param="stream_options"
        )


def _check_logit_bias(bias: dict[str, float] | None) -> None:
    if not bias:
        return
    if len(bias) > MAX_LOGIT_BIAS:
        raise InvalidRequest(
            f"Invalid value for 'logit_bias': at most {MAX_LOGIT_BIAS} token ids, got {len(bias)}.",
            param="logit_bias",
        )
    for key in bias:
        # isdecimal() also takes other scripts' digits; token ids are ASCII.
        if not (key.isascii() and key.isdecimal() and len(key) <= 10 and int(key) <= MAX_TOKEN_ID):
            shown = key if len(key) <= 20 else key[:20] + "..."
            raise InvalidRequest(
                "Invalid value for 'logit_bias': keys must be token ids (integers from 0 to "
                f"{MAX_TOKEN_ID}), got {shown!r}.",
                param="logit_bias",
            )


def _check_message(index: int, message: Message) -> None:
    where = f"messages[{index}]"
    if isinstance(message, AssistantMessage):
        if message.content is None and not message.tool_calls:
            raise InvalidRequest(
                f"'{where}': an assistant message needs 'content' or 'tool_calls'.",
                param=f"{where}.content",
            )
        for call_index, call in enumerate(message.tool_calls or ()):
            # Arguments are JSON in a string, parsed again by upstream translations.
            check_depth(
                call.function.arguments.encode(),
                param=f"{where}.tool_calls[{call_index}].function.arguments",
            )
        return
    content = message.content
    if isinstance(content, list):
        if not content:
            raise InvalidRequest(
                f"'{where}.content' must not be an empty array.", param=f"{where}.content"
            )
        text_only = not isinstance(message, UserMessage)
        for part_index, part in enumerate(content):
            param = f"{where}.content[{part_index}]"
            if text_only and not isinstance(part, TextPart):
                raise InvalidRequest(
                    f"'{param}': {_role(message)} messages may only contain text parts.",
                    param=param,
                )
            if isinstance(part, ImagePart):
                _check_image_url(part.image_url.url, f"{param}.image_url.url")


def _role(message: Message) -> str:
    return type(message).__struct_config__.tag  # type: ignore[return-value]


def _check_image_url(url: str, param: str) -> None:
    if url.startswith(("https://", "http://")):
        return
    if url.startswith("data:image/") and ";base64," in url:
        return
    raise InvalidRequest(
        f"'{param}' must be an https URL or a data:image/...;base64 URL.", param=param
    )


def _check_tools(request: ChatRequest) -> None:
    names: set[str] = set()
    for index, tool in enumerate(request.tools or ()):
        param = f"tools[{index}].function"
        if tool.function.name in names:
            raise InvalidRequest(
                f"Duplicate tool name {tool.function.name!r} in '{param}.name'.",
                param=f"{param}.name",
            )
        names.add(tool.function.name)
        schema = tool.function.parameters
        if schema is not None and schema.get("type", "object") != "object":
            raise InvalidRequest(
                f"'{param}.parameters' must be a JSON Schema of type 'object'.",
                param=f"{param}.parameters",
            )
    choice = request.tool_choice
    if choice in (None, "none", "auto"):
        return
    if not request.tools:
        raise InvalidRequest(
            "'tool_choice' is only allowed when 'tools' are specified.", param="tool_choice"
        )
    if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
        raise InvalidRequest(
            f"'tool_choice' names the function {choice.function.name!r}, "
            "which is not among 'tools'.",
            param="tool_choice",
        )


def _check_response_format(request: ChatRequest) -> None:
    fmt = request.response_format
    if isinstance(fmt, JsonSchemaFormat):
        schema = fmt.json_schema.schema
        if schema is not None and not isinstance(schema.get("type", "object"), str | list):
            raise InvalidRequest(
                "'response_format.json_schema.schema' is not a valid JSON Schema.",
                param="response_format.json_schema.schema",
            )
