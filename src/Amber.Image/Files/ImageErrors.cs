using System.Runtime.InteropServices;

namespace Amber.Image;

// Every exception of this library is built here, so messages stay one line and name the path.
internal static class ImageErrors
{
    internal static ImageFormatException Format(string path, string problem) =>
        new(OneLine($"{path}: {problem}"));

    /// <summary>A file whose XXH3 is not the one its checkpoint's manifest lists.</summary>
    internal static ImageFormatException ManifestChecksum(string path, ulong actual, ulong listed) =>
        Format(path, $"checksum mismatch: XXH3 {actual:x16}, the manifest says {listed:x16}");

    internal static ImageStoreException Errno(string operation, string path, int errno) =>
        new(OneLine($"cannot {operation} {path}: {Marshal.GetPInvokeErrorMessage(errno)}"));

    internal static ImageStoreException Io(string operation, string path, Exception inner) =>
        new(OneLine($"cannot {operation} {path}: {Reason(inner)}"), inner);

    // On Unix an IOException carries the errno in HResult; its message repeats the path.
    private static string Reason(Exception ex) =>
        ex is IOException && ex.HResult is > 0 and < 4096
            ? Marshal.GetPInvokeErrorMessage(ex.HResult)
            : ex.Message;

    internal static string OneLine(string text) => text.ReplaceLineEndings(" ");
}
