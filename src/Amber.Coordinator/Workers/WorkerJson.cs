using System.Text.Json.Serialization;

namespace Amber.Coordinator.Workers;

/// <summary>A worker's report as JSON (source-generated: the CLI is Native AOT).</summary>
[JsonSourceGenerationOptions(WriteIndented = false, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(WorkerReport))]
public sealed partial class WorkerJson : JsonSerializerContext;
