namespace Amber.Kernel.Net;

/// <summary>
/// Everything TCP_REPAIR needs to make a connection again on a new socket (see <see cref="TcpRepair"/>).
/// </summary>
/// <param name="Family">AF_INET or AF_INET6 (also for a v4-mapped address).</param>
/// <param name="LocalAddress">The socket's own address, as getsockname gives it (sockaddr bytes).</param>
/// <param name="RemoteAddress">The peer's address, as getpeername gives it.</param>
/// <param name="SendSequence">
/// write_seq, as TCP_QUEUE_SEQ gives it: the sequence after the last byte of <paramref name="SendQueue"/>,
/// and after this end's FIN once it is queued (<paramref name="LocalFin"/> not <see cref="TcpFin.None"/>).
/// </param>
/// <param name="ReceiveSequence">
/// rcv_nxt: the sequence after the last byte of <paramref name="ReceiveQueue"/>, and after the peer's FIN
/// once it came (<paramref name="RemoteFinReceived"/>).
/// </param>
/// <param name="SendQueue">Bytes the program wrote that the peer has not acknowledged: sent, then not yet sent.</param>
/// <param name="NotSentBytes">How many bytes at the end of <paramref name="SendQueue"/> were never sent (SIOCOUTQNSD, less an unsent FIN).</param>
/// <param name="ReceiveQueue">Bytes received and acknowledged that the program has not read.</param>
/// <param name="MaxSegmentSize">The MSS clamp (TCP_MAXSEG in repair mode).</param>
/// <param name="Timestamp">The connection's TCP timestamp clock (TCP_TIMESTAMP), when <paramref name="Options"/> has timestamps.</param>
/// <param name="LocalFin">Where this end's FIN is: none, queued, sent, or acknowledged by the peer.</param>
/// <param name="RemoteFinReceived">
/// Whether the peer's FIN came, in order (CLOSE_WAIT, LAST_ACK, CLOSING): the program reads
/// <paramref name="ReceiveQueue"/>, then end of file.
/// </param>
public sealed record TcpConnectionState(
    int Family,
    byte[] LocalAddress,
    byte[] RemoteAddress,
    TcpState State,
    uint SendSequence,
    uint ReceiveSequence,
    byte[] SendQueue,
    int NotSentBytes,
    byte[] ReceiveQueue,
    int MaxSegmentSize,
    int SendWindowScale,
    int ReceiveWindowScale,
    TcpOptions Options,
    uint Timestamp,
    TcpWindow Window,
    TcpFin LocalFin = TcpFin.None,
    bool RemoteFinReceived = false)
{
    /// <summary>Bytes at the start of <see cref="SendQueue"/> that were sent and not yet acknowledged.</summary>
    public int SentBytes => SendQueue.Length - NotSentBytes;
}
