using System.Net.Sockets;
using System.Text;

namespace Amber.Sockets;

/// <summary>
/// Reads '\n'-terminated UTF-8 lines from a stream socket, keeping what came after a line for the next.
/// One source file, compiled into both the coordinator and the client library (which references
/// nothing of Amber's): both ends of the registration socket read lines the same way.
/// </summary>
internal sealed class LineReader(Socket socket)
{
    private const int MaxLine = 16 << 20;
    private readonly byte[] _chunk = new byte[4096];
    private readonly List<byte> _pending = [];

    /// <summary>The next line (without its '\n'), or null at the end of the stream.</summary>
    public string? ReadLine()
    {
        while (true)
        {
            int newline = _pending.IndexOf((byte)'\n');
            if (newline >= 0)
            {
                var line = Encoding.UTF8.GetString([.. _pending.GetRange(0, newline)]);
                _pending.RemoveRange(0, newline + 1);
                return line;
            }
            int n = socket.Receive(_chunk);
            if (n == 0)
            {
                if (_pending.Count == 0)
                    return null;
                var last = Encoding.UTF8.GetString([.. _pending]);
                _pending.Clear();
                return last;
            }
            _pending.AddRange(_chunk.AsSpan(0, n));
            if (_pending.Count > MaxLine)
                throw new IOException($"a line longer than {MaxLine} bytes");
        }
    }
}
