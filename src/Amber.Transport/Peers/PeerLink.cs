using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Amber.Transport.Cluster;

namespace Amber.Transport.Peers;

/// <summary>
/// A mutual-TLS connection between two node agents: messages (a 4-byte length, then a
/// <see cref="PeerMessage"/> in JSON) and, between them, image streams on <see cref="Stream"/>. The
/// other end is a node of the cluster (its certificate checked during the handshake): <see cref="Peer"/>
/// is its name. Reads and writes give up after a timeout of silence (<see cref="DefaultTimeout"/>, or
/// the agent's --peer-timeout): a peer that died, or a link cut, ends the connection instead of hanging it.
/// </summary>
internal sealed class PeerLink : IDisposable
{
    /// <summary>
    /// 2: "busy", said by a source at work between two messages. 3: groups across nodes: a copy comes
    /// with its group's settings, a restore's part may be a lost node's, "recover" and "store". 4: a
    /// checkpoint-part's "stop". 5: a run request names the node it is for (a part of a group across
    /// nodes, whose settings are the cluster's).
    /// </summary>
    public const int ProtocolVersion = 5;
    /// <summary>Largest message: a group's settings with room to spare; anything more is not a peer's.</summary>
    private const int MaxMessageBytes = 4 << 20;
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    private readonly Socket _socket;
    private readonly SslStream _tls;

    private readonly TimeSpan _timeout;

    private PeerLink(Socket socket, SslStream tls, string peer, TimeSpan timeout)
    {
        _socket = socket;
        _tls = tls;
        Peer = peer;
        _timeout = timeout;
    }

    /// <summary>The other node's name, from its certificate.</summary>
    public string Peer { get; }

    /// <summary>The connection's bytes, for an image stream between two messages.</summary>
    public Stream Stream => _tls;

    /// <summary>Connects to the agent at <paramref name="address"/> as <paramref name="identity"/>; the handshake fails unless both are nodes of the cluster.</summary>
    /// <exception cref="IOException">It cannot be reached, or it is not a node of this cluster (the message says which).</exception>
    public static PeerLink Connect(IPEndPoint address, NodeIdentity identity, TimeSpan timeout)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using (var connecting = new CancellationTokenSource(timeout))
                socket.ConnectAsync(address, connecting.Token).AsTask().GetAwaiter().GetResult();
            return Secure(socket, identity, server: false, timeout);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            socket.Dispose();
            throw new IOException($"cannot reach the agent at {address}: {(e is OperationCanceledException ? "no answer" : e.Message)}", e);
        }
    }

    /// <summary>The server's side of a connection accepted by an agent's listener.</summary>
    /// <exception cref="IOException">The peer is not a node of this cluster, or the handshake failed.</exception>
    public static PeerLink Accept(Socket socket, NodeIdentity identity, TimeSpan timeout)
    {
        socket.NoDelay = true; // a small message is sent at once, not held for the ACK of the one before
        return Secure(socket, identity, server: true, timeout);
    }

    private static PeerLink Secure(Socket socket, NodeIdentity identity, bool server, TimeSpan timeout)
    {
        socket.ReceiveTimeout = socket.SendTimeout = (int)timeout.TotalMilliseconds;
        string where = socket.RemoteEndPoint?.ToString() ?? "?";
        var tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        string? refused = null; // why the peer's certificate was refused, said by the check itself
        bool Check(X509Certificate? certificate) => (refused = identity.Check(certificate)) is null;
        try
        {
            if (server)
                tls.AuthenticateAsServer(identity.ServerOptions(Check));
            else
                tls.AuthenticateAsClient(identity.ClientOptions(Check));
            return new PeerLink(socket, tls, NodeIdentity.NameOf(tls.RemoteCertificate!), timeout);
        }
        catch (Exception e) when (e is AuthenticationException or IOException or InvalidOperationException)
        {
            tls.Dispose();
            throw new IOException($"the TLS handshake with {(server ? "a peer" : "the agent")} at {where} failed: {refused ?? e.Message}", e);
        }
    }

    public void Send(PeerMessage message)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(message, PeerJson.Default.PeerMessage);
        // One write, so one TLS record and one segment: two small ones could wait on each other (Nagle, delayed ACKs).
        byte[] frame = new byte[4 + json.Length];
        BinaryPrimitives.WriteInt32LittleEndian(frame, json.Length);
        json.CopyTo(frame, 4);
        _tls.Write(frame);
        _tls.Flush();
    }

    /// <summary>The next message.</summary>
    /// <exception cref="IOException">The connection ended or timed out, or what came is not a message.</exception>
    public PeerMessage Receive()
    {
        Span<byte> head = stackalloc byte[4];
        _tls.ReadExactly(head);
        int length = BinaryPrimitives.ReadInt32LittleEndian(head);
        if (length is <= 0 or > MaxMessageBytes)
            throw new IOException($"node {Peer} sent a message of {length} bytes: not one of ours");
        byte[] json = new byte[length];
        _tls.ReadExactly(json);
        try
        {
            return JsonSerializer.Deserialize(json, PeerJson.Default.PeerMessage) ?? throw new IOException($"node {Peer} sent an empty message");
        }
        catch (JsonException e)
        {
            throw new IOException($"node {Peer} sent a message that is not one: {e.Message}", e);
        }
    }

    /// <summary>The next message, which must be <paramref name="op"/>: an "error" answer becomes a <see cref="PeerRefusedException"/>.</summary>
    public PeerMessage Expect(string op)
    {
        var message = Receive();
        if (message.Op == Ops.Error)
            throw new PeerRefusedException(Peer, message.Error);
        if (message.Op != op)
            throw new IOException($"node {Peer} answered '{message.Op}' where '{op}' was due");
        return message;
    }

    /// <summary>The connecting side's hello: this node's protocol version sent, the peer's checked against it.</summary>
    /// <exception cref="IOException">The peer answered otherwise, or speaks another version.</exception>
    public void Greet()
    {
        Send(new PeerMessage { Op = Ops.Hello, Version = ProtocolVersion });
        var hello = Expect(Ops.Hello);
        if (hello.Version != ProtocolVersion)
            throw new IOException($"node {Peer} speaks version {hello.Version} of the agents' protocol, this node {ProtocolVersion}");
    }

    /// <summary>
    /// Says "busy" to the peer every third of the timeout of silence, until disposed: for work of this
    /// side between two messages that may outlast it (the checkpoint of a big group), which would
    /// otherwise look to the peer like a dead node. Nothing else may write on the link meanwhile.
    /// </summary>
    public IDisposable KeepAlive() => new Heartbeat(this);

    private sealed class Heartbeat : IDisposable
    {
        private readonly PeerLink _link;
        private readonly Lock _beating = new();
        private readonly Timer _timer;
        private bool _stopped;

        public Heartbeat(PeerLink link)
        {
            _link = link;
            var period = link._timeout / 3;
            _timer = new Timer(_ => Beat(), null, period, period);
        }

        private void Beat()
        {
            lock (_beating)
            {
                if (_stopped)
                    return;
                try
                {
                    _link.Send(PeerMessage.Of(Ops.Busy));
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
                {
                    _stopped = true; // the link is gone: the next message this side sends says so
                }
            }
        }

        /// <summary>Stops the beats; one being sent is waited for, so the link is this side's again on return.</summary>
        public void Dispose()
        {
            lock (_beating)
                _stopped = true;
            _timer.Dispose();
        }
    }

    /// <summary>How long a read may wait (a restore on the other side takes a while).</summary>
    public void WaitAtMost(TimeSpan wait) => _socket.ReceiveTimeout = (int)wait.TotalMilliseconds;

    /// <summary>
    /// Reads and drops what the peer still sends, until it ends, stays silent for <paramref name="quiet"/>,
    /// or <paramref name="most"/> has passed. For a side that gave up in the middle of a stream after
    /// saying why: closed with unread bytes, its socket would send a reset, and the peer, still writing,
    /// would see "connection reset" before it read the why.
    /// </summary>
    public void Drain(TimeSpan quiet, TimeSpan most)
    {
        long until = Environment.TickCount64 + (long)most.TotalMilliseconds;
        byte[] sink = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            _socket.ReceiveTimeout = (int)quiet.TotalMilliseconds;
            while (Environment.TickCount64 < until && _tls.Read(sink) > 0)
            {
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // Silent, gone, or not TLS any more: either way nothing is left to wait for.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(sink);
        }
    }

    /// <summary>Ends the link at once, under whoever reads or writes on it: both find it closed (an IOException), not disposed.</summary>
    public void Cut()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // closed already
        }
    }

    public void Dispose() => _tls.Dispose();
}

/// <summary>The other node answered with an error: it says why in <see cref="Exception.Message"/>.</summary>
internal sealed class PeerRefusedException(string peer, string error) : IOException($"node {peer}: {error}");
