using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Amber.Cli;

/// <summary>
/// What a verb reports, as one JSON document on stdout (--json): the figures its human lines show,
/// for a program to read. Human lines (warnings included) stay on stderr.
/// </summary>
public static class JsonReport
{
    public static void Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            body(writer);
        Console.Out.WriteLine(Encoding.UTF8.GetString(buffer.WrittenSpan));
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

    /// <summary>The --json option every reporting verb has.</summary>
    public static System.CommandLine.Option<bool> Option() =>
        new("--json") { Description = "Print what is reported as one JSON document on stdout" };
}
