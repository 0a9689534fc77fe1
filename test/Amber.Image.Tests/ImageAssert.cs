using Amber.Image.Schema;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image.Tests;

internal static class ImageAssert
{
    /// <summary>Asserts Open fails with a one-line ImageFormatException and returns its message.</summary>
    public static string OpenFails(string directory, ImageLimits? limits = null, bool verifyPageFiles = true)
    {
        var ex = Assert.Throws<ImageFormatException>(() => CheckpointReader.Open(directory, limits, verifyPageFiles));
        return OneLine(ex);
    }

    public static string OneLine(Exception ex)
    {
        Assert.DoesNotContain('\n', ex.Message);
        Assert.DoesNotContain('\r', ex.Message);
        Assert.False(string.IsNullOrWhiteSpace(ex.Message));
        return ex.Message;
    }

    public static void FlipBit(string path, long offset, int bit = 0)
    {
        using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        byte[] one = new byte[1];
        Assert.Equal(1, RandomAccess.Read(handle, one, offset));
        one[0] ^= (byte)(1 << bit);
        RandomAccess.Write(handle, one, offset);
    }

    public static void Truncate(string path, long length)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
        stream.SetLength(length);
    }

    /// <summary>
    /// Replaces the manifest with an edited copy, as a buggy writer of this host could (signed with
    /// its key, so what is checked behind the signature is tested), or, unsigned, as anyone else could.
    /// </summary>
    public static void RewriteManifest(string directory, Action<Manifest> edit, bool sign = true)
    {
        string path = Path.Join(directory, ImageFormat.ManifestFileName);
        Manifest manifest = MessageFile.Read(path, ImageFileKind.Manifest, Manifest.Parser, ImageLimits.Default);
        edit(manifest);
        if (sign)
            HostKey.Sign(manifest);
        WriteMessageFile(path, ImageFileKind.Manifest, manifest);
    }

    public static void WriteMessageFile(string path, ImageFileKind kind, Google.Protobuf.IMessage message)
    {
        File.Delete(path);
        using SafeFileHandle handle = ImageFiles.CreateNew(path);
        MessageFile.Write(handle, path, kind, message);
    }
}
