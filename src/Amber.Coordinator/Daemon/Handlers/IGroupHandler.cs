using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>
/// One operation on a group, asked by a requester. The dispatcher has checked that the
/// requester may use the group and holds its Busy: operations on a group never overlap. An operation
/// that takes a while tells <c>progress</c> (when the requester asked for it) how far it has come.
/// </summary>
internal interface IGroupHandler<in TRequest> where TRequest : GroupRequest
{
    ControlResponse Handle(GroupRuntime group, TRequest request, Requester who, Action<ProgressSample>? progress);
}
