using System.Text.Json.Serialization;

namespace Amber.Coordinator.Control;

/// <summary>The control socket's JSON (source-generated: the CLI is Native AOT).</summary>
[JsonSourceGenerationOptions(WriteIndented = false, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ControlRequest))]
[JsonSerializable(typeof(ControlResponse))]
[JsonSerializable(typeof(ProgressSample))]
public sealed partial class ControlJson : JsonSerializerContext;
