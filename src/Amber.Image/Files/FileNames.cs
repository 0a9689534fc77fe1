using System.Text;

namespace Amber.Image;

// A file of a checkpoint is named by one safe path component, so no name can reach outside the
// checkpoint directory or hide from a listing.
internal static class FileNames
{
    private const int MaxNameBytes = 255;

    internal static string? FindProblem(string name)
    {
        if (name.Length == 0)
        {
            return "is empty";
        }
        if (name.Contains('/'))
        {
            return "is not a single path component";
        }
        if (name[0] == '.')
        {
            return "starts with '.'";
        }
        foreach (char c in name)
        {
            if (char.IsControl(c))
            {
                return "contains a control character";
            }
        }
        if (Encoding.UTF8.GetByteCount(name) > MaxNameBytes)
        {
            return $"is longer than {MaxNameBytes} bytes";
        }
        return null;
    }

    internal static void ThrowIfUnsafe(string fileName, string paramName)
    {
        ArgumentNullException.ThrowIfNull(fileName, paramName);
        if (FindProblem(fileName) is { } problem)
        {
            throw new ArgumentException($"file name {Quote(fileName)} {problem}", paramName);
        }
    }

    // Names read from an image may hold anything; quote them printable and on one line.
    internal static string Quote(string name)
    {
        var builder = new StringBuilder(name.Length + 2).Append('"');
        foreach (char c in name.AsSpan(0, Math.Min(name.Length, 300)))
        {
            builder.Append(char.IsControl(c) ? $"\\u{(int)c:x4}" : c);
        }
        return builder.Append(name.Length > 300 ? "...\"" : "\"").ToString();
    }
}
