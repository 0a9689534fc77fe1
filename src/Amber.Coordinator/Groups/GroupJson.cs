using System.Text.Json.Serialization;

namespace Amber.Coordinator.Groups;

/// <summary>group.json (source-generated: the CLI is Native AOT).</summary>
[JsonSourceGenerationOptions(WriteIndented = false, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(GroupConfig))]
public sealed partial class GroupJson : JsonSerializerContext;
