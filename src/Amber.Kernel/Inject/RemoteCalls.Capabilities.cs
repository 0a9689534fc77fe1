using System.Buffers.Binary;
using Amber.Native;

namespace Amber.Kernel.Inject;

public sealed partial class RemoteCalls
{
    private const uint CapabilityVersion3 = 0x20080522; // _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set

    /// <summary>capset(2) of the calling thread: effective, permitted and inheritable, 64 bits each.</summary>
    public void SetCapabilities(ulong effective, ulong permitted, ulong inheritable)
    {
        Span<byte> buffer = stackalloc byte[8 + 24];
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, CapabilityVersion3);
        BinaryPrimitives.WriteInt32LittleEndian(buffer[4..], 0);
        for (int word = 0; word < 2; word++)
        {
            var data = buffer.Slice(8 + word * 12, 12);
            BinaryPrimitives.WriteUInt32LittleEndian(data, (uint)(effective >> (32 * word)));
            BinaryPrimitives.WriteUInt32LittleEndian(data[4..], (uint)(permitted >> (32 * word)));
            BinaryPrimitives.WriteUInt32LittleEndian(data[8..], (uint)(inheritable >> (32 * word)));
        }
        Memory.Write(Scratch, buffer);
        Call("capset", SyscallNumbers.Capset, Scratch, Scratch + 8);
    }

    public void DropBoundingCapability(int capability) =>
        Call($"prctl(PR_CAPBSET_DROP, {capability})", SyscallNumbers.Prctl, Interop.PR_CAPBSET_DROP, (ulong)capability);

    public void RaiseAmbientCapability(int capability) =>
        Call($"prctl(PR_CAP_AMBIENT_RAISE, {capability})", SyscallNumbers.Prctl, Interop.PR_CAP_AMBIENT, Interop.PR_CAP_AMBIENT_RAISE, (ulong)capability);

    /// <summary>Keep permitted capabilities across a change to a non-root uid (PR_SET_KEEPCAPS).</summary>
    public void KeepCapabilities(bool keep) => Call("prctl(PR_SET_KEEPCAPS)", SyscallNumbers.Prctl, Interop.PR_SET_KEEPCAPS, keep ? 1UL : 0);
}
