namespace Amber.Kernel.Net;

/// <summary>
/// TCP_REPAIR_WINDOW: the windows the two ends last announced. <see cref="SendWl1"/> is the sequence
/// of the segment that last updated the send window; <see cref="ReceiveWindowUpdate"/> (rcv_wup) the
/// receive sequence when this end last announced its window.
/// </summary>
public readonly record struct TcpWindow(uint SendWl1, uint SendWindow, uint MaxWindow, uint ReceiveWindow, uint ReceiveWindowUpdate);
