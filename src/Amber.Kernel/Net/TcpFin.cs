namespace Amber.Kernel.Net;

/// <summary>
/// Where this end's FIN is (a connection's end after shutdown(SHUT_WR) or close). The FIN takes one
/// sequence number, after the last byte of the send queue.
/// </summary>
public enum TcpFin
{
    /// <summary>The program has not shut the connection down for writing (ESTABLISHED, CLOSE_WAIT).</summary>
    None,

    /// <summary>Queued after bytes never sent, or held back by the peer's closed window: it goes out with them.</summary>
    NotSent,

    /// <summary>Sent, not acknowledged yet (FIN_WAIT1, CLOSING, LAST_ACK): sent again on timeout.</summary>
    Sent,

    /// <summary>The peer acknowledged it (FIN_WAIT2): the send queue is empty.</summary>
    Acknowledged,
}
