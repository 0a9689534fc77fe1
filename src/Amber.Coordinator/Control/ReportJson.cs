using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Amber.Coordinator.Store;

namespace Amber.Coordinator.Control;

/// <summary>
/// What a verb reports, as one JSON document (amber VERB --json): written by the CLI for what it does
/// itself, and by the coordinator into its answer (ControlResponse.Report) for a group's.
/// </summary>
public static class ReportJson
{
    /// <summary>The JSON document <paramref name="body"/> writes, indented, non-ASCII characters as they are.</summary>
    public static string Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            body(writer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>"name": [ ... ] of strings.</summary>
    public static void WriteStrings(this Utf8JsonWriter writer, string name, IEnumerable<string> values)
    {
        writer.WriteStartArray(name);
        foreach (var v in values)
            writer.WriteStringValue(v);
        writer.WriteEndArray();
    }

    /// <summary>"name": [ ... ] of numbers.</summary>
    public static void WriteNumbers(this Utf8JsonWriter writer, string name, IEnumerable<int> values)
    {
        writer.WriteStartArray(name);
        foreach (var v in values)
            writer.WriteNumberValue(v);
        writer.WriteEndArray();
    }

    /// <summary>Every checkpoint of a store in order (the damaged ones with their problem), and what is not one.</summary>
    public static string Store(StoreContents contents) => Write(w =>
    {
        var latest = contents.Checkpoints.LastOrDefault();
        w.WriteStartObject();
        w.WriteStartArray("checkpoints");
        foreach (var e in contents.Entries)
        {
            w.WriteStartObject();
            w.WriteString("name", e.Name);
            w.WriteString("path", e.Path);
            if (e.Checkpoint is { } c)
            {
                w.WriteString("created", c.Created);
                w.WriteString("kind", c.Parent.Length == 0 ? (c.Merged ? "full (merged)" : "full") : "incremental");
                w.WriteString("parent", c.Parent.Length == 0 ? null : c.Parent);
                w.WriteStrings("uses", c.Sources);
                w.WriteNumber("trees", c.Trees);
                w.WriteNumber("processes", c.Processes);
                w.WriteNumber("bytes", c.Bytes);
                w.WriteBoolean("latest", c == latest);
            }
            else
            {
                w.WriteString("damaged", e.Problem);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStrings("unfinished", contents.Unfinished);
        w.WriteEndObject();
    });

    /// <summary>A verification: the figures, and each checkpoint's line as the human output has it.</summary>
    public static string Verification(int checkpoints, int damaged, IReadOnlyList<string> lines, IReadOnlyList<string> unfinished) => Write(w =>
    {
        w.WriteStartObject();
        w.WriteNumber("checkpoints", checkpoints);
        w.WriteNumber("damaged", damaged);
        w.WriteStrings("results", lines);
        w.WriteStrings("unfinished", unfinished);
        w.WriteEndObject();
    });
}
