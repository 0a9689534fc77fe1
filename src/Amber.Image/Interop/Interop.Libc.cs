using System.Runtime.InteropServices;

namespace Amber.Image;

// Amber.Native is internal to the kernel facade, so the image store binds the few libc calls it
// needs itself: opening without following symlinks, fsync of directories, rename over an empty
// directory. Candidates to move into Amber.Native once it exposes them.
internal static partial class Interop
{
    internal static partial class Libc
    {
        private const string LibraryName = "libc";

        // Functions taking an fd are declared with SafeFileHandle (passed pointer-sized); the
        // x86_64 and arm64 calling conventions read an int argument from the low 32 bits.

        internal const int O_RDONLY = 0;
        internal const int O_WRONLY = 1;
        internal const int O_CREAT = 0x40;
        internal const int O_EXCL = 0x80;
        internal const int O_NONBLOCK = 0x800;
        internal const int O_CLOEXEC = 0x80000;

        // asm-generic value; arm and arm64 are the exceptions among the architectures .NET runs on.
        internal static int O_NOFOLLOW =>
            RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x8000 : 0x20000;

        internal const int ENOENT = 2;
        internal const int ENOTDIR = 20;
        internal const int EEXIST = 17;
        internal const int ENOTEMPTY = 39;
        internal const int ELOOP = 40;
    }
}
