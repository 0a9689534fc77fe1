using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Amber.Coordinator.Control;
using Amber.Coordinator.Security;
using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Sockets;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Daemon;

/// <summary>
/// The control socket: anyone may connect; each connection carries one request line and gets one
/// response line, served on a thread of its own, the requester told by its peer credentials. A
/// request that asks for progress gets progress lines before its answer, at most ten a second.
/// </summary>
internal sealed class ControlServer(string path, RequestDispatcher dispatcher, CancellationToken stopping, ILogger logger) : IDisposable
{
    private Socket? _listener;

    public void Start()
    {
        File.Delete(path);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(path));
        // Anyone may connect; each request is checked against the caller's credentials.
        File.SetUnixFileMode(path, FileModes.ReadWriteAll);
        _listener.Listen(64);
        new Thread(Accept) { IsBackground = true, Name = "amberd-accept" }.Start();
    }

    public void Dispose()
    {
        // A coordinator that lost the race for the lock never bound the socket: it is the other one's.
        if (_listener is null)
            return;
        _listener.Dispose();
        try { File.Delete(path); } catch (IOException) { }
    }

    private void Accept()
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = _listener!.Accept();
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e)
            {
                logger.AcceptFailed(e.Message);
                continue;
            }
            new Thread(() => Serve(connection)) { IsBackground = true, Name = "amberd-request" }.Start();
        }
    }

    private void Serve(Socket connection)
    {
        using (connection)
        {
            ControlResponse response;
            try
            {
                var who = Requester.Of(connection);
                var line = new LineReader(connection).ReadLine();
                var request = line is null ? null : JsonSerializer.Deserialize(line, ControlJson.Default.ControlRequest);
                response = request is null ? ControlResponse.Failure("an empty request")
                    : dispatcher.Handle(request, who, request.Progress ? ProgressTo(connection) : null);
            }
            catch (Exception e) when (e is IOException or JsonException or SocketException or KernelCallException or TargetGoneException or UnauthorizedAccessException or InvalidOperationException)
            {
                response = ControlResponse.Failure(e.Message.ReplaceLineEndings(" "));
            }
            catch (Exception e)
            {
                // Anyone may send a request: nothing in one may end the coordinator.
                logger.RequestFailed(e);
                response = ControlResponse.Failure($"internal error ({e.GetType().Name}): {e.Message.ReplaceLineEndings(" ")}");
            }
            Send(connection, response);
        }
    }

    /// <summary>Sends a response line; a CLI that went away misses it, and the work is done all the same.</summary>
    private static void Send(Socket connection, ControlResponse response)
    {
        try
        {
            lock (connection)
                connection.Send(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(response, ControlJson.Default.ControlResponse) + "\n"));
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Progress lines to the requester, a tenth of a second apart at the least (the latest sample wins, a phase change goes at once).</summary>
    private static Action<ProgressSample> ProgressTo(Socket connection)
    {
        long last = 0;
        string phase = "";
        return sample =>
        {
            long now = Environment.TickCount64;
            if (now - Interlocked.Read(ref last) < 100 && sample.Phase == phase)
                return;
            Interlocked.Exchange(ref last, now);
            phase = sample.Phase;
            Send(connection, new ControlResponse { Ok = true, Progress = sample });
        };
    }
}
