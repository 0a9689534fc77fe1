using System.Buffers.Binary;

namespace Amber.Kernel.Processes;

/// <summary>
/// The process a restore starts from: a static ELF of a few hundred bytes that only loops on
/// pause(). No libc, no TLS, no rseq registration (docs/kernel.md, pitfall 15), so nothing of it survives
/// once its mappings are replaced. Generated here, so no C toolchain is needed to restore.
/// </summary>
public static class Husk
{
    public const ulong LoadAddress = 0x400000;
    private const int HeaderSize = 64;
    private const int ProgramHeaderSize = 56;
    private const int CodeOffset = HeaderSize + 2 * ProgramHeaderSize;

    // loop: mov eax, 34 (pause); syscall; jmp loop
    private static ReadOnlySpan<byte> Code => [0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7];

    public static ulong EntryAddress => LoadAddress + CodeOffset;

    /// <summary>Address of the husk's own `syscall` instruction, usable for the first injections.</summary>
    public static ulong SyscallAddress => EntryAddress + 5;

    private static readonly Lazy<string> Installed = new(InstallFile);

    /// <summary>
    /// The husk as a file Amber can exec: written once into a directory only the current user can
    /// write (/run/amber, or amber-UID in the temp directory), replaced atomically when it differs.
    /// </summary>
    public static string Path => Installed.Value;

    private static string InstallFile()
    {
        uint uid = GetUid();
        string dir = uid == 0 && Directory.Exists("/run") ? "/run/amber" : System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"amber-{uid}");
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var info = new DirectoryInfo(dir);
        if (info.LinkTarget is not null || !FileStatOwnedBy(dir, uid) || (info.UnixFileMode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
            throw new IOException($"{dir} is not a private directory of user {uid}; refusing to run a program from it");
        byte[] elf = Build();
        string path = System.IO.Path.Combine(dir, "husk-1");
        if (File.Exists(path) && new FileInfo(path).LinkTarget is null && File.ReadAllBytes(path).AsSpan().SequenceEqual(elf))
            return path;
        string temp = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllBytes(temp, elf);
        File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        File.Move(temp, path, overwrite: true);
        return path;
    }

    private static uint GetUid() => Files.FileStat.TryGet("/proc/self", out var self) ? self.Uid : 0;

    private static bool FileStatOwnedBy(string path, uint uid) => Files.FileStat.TryGet(path, out var st) && st.Uid == uid;

    public static byte[] Build()
    {
        var elf = new byte[CodeOffset + Code.Length];
        var s = elf.AsSpan();
        s[0] = 0x7f; s[1] = (byte)'E'; s[2] = (byte)'L'; s[3] = (byte)'F';
        s[4] = 2; // 64-bit
        s[5] = 1; // little endian
        s[6] = 1; // ELF version
        BinaryPrimitives.WriteUInt16LittleEndian(s[16..], 2);          // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(s[18..], 0x3e);       // EM_X86_64
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(s[24..], EntryAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(s[32..], HeaderSize); // e_phoff
        BinaryPrimitives.WriteUInt16LittleEndian(s[52..], HeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(s[54..], ProgramHeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(s[56..], 2);          // e_phnum

        // PT_LOAD, R+X, the whole file at LoadAddress.
        var load = s.Slice(HeaderSize, ProgramHeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(load, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(load[4..], 5);
        BinaryPrimitives.WriteUInt64LittleEndian(load[16..], LoadAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(load[24..], LoadAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(load[32..], (ulong)elf.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(load[40..], (ulong)elf.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(load[48..], 0x1000);

        // PT_GNU_STACK, RW: without it the stack would be executable, and that would outlive the husk.
        var stack = s.Slice(HeaderSize + ProgramHeaderSize, ProgramHeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(stack, 0x6474e551);
        BinaryPrimitives.WriteUInt32LittleEndian(stack[4..], 6);
        BinaryPrimitives.WriteUInt64LittleEndian(stack[48..], 16);

        Code.CopyTo(s[CodeOffset..]);
        return elf;
    }
}
