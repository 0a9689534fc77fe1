using System.Security.Cryptography;

namespace Amber.Image;

/// <summary>
/// A key that encrypts checkpoints at rest (amber checkpoint --encrypt KEYFILE, restore --key
/// KEYFILE): 32 random bytes in a file only its owner may read, the AES-256-GCM key of every
/// block of page data and every metadata file. A checkpoint names its key by <see cref="Id"/>
/// only (in the manifest), never by the key itself.
/// </summary>
public sealed class ImageKey
{
    /// <summary>The length of a key, and of a key file.</summary>
    public const int Length = 32;

    private const UnixFileMode Others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    private readonly byte[] _key;

    private ImageKey(byte[] key, string path)
    {
        _key = key;
        Path = path;
        Id = Convert.ToHexStringLower(SHA256.HashData(key))[..16];
    }

    /// <summary>The first 16 hex digits of the key's SHA-256: what a checkpoint records and messages show.</summary>
    public string Id { get; }

    /// <summary>The key file it was read from (empty for a key made in memory), for messages.</summary>
    public string Path { get; }

    /// <summary>The key's bytes, for <see cref="BlockCipher"/> only.</summary>
    internal ReadOnlySpan<byte> Bytes => _key;

    /// <summary>
    /// A copy of the key's bytes, to hand to another node of the cluster over its mutual TLS (a group's
    /// key goes with it when it migrates: that node restores its memory anyway).
    /// </summary>
    public byte[] ToBytes() => [.. _key];

    /// <summary>Writes <paramref name="key"/> (exactly <see cref="Length"/> bytes) to a new key file, mode 0600, replacing none.</summary>
    /// <exception cref="ImageStoreException">The file exists or cannot be written.</exception>
    public static ImageKey Save(string path, ReadOnlySpan<byte> key)
    {
        if (key.Length != Length)
            throw new ImageStoreException($"a key is {Length} bytes, not {key.Length}");
        return Write(path, key.ToArray());
    }

    /// <summary>A key of these bytes (exactly <see cref="Length"/>), kept in memory only.</summary>
    /// <exception cref="ArgumentException">Not <see cref="Length"/> bytes.</exception>
    public static ImageKey FromBytes(ReadOnlySpan<byte> key) =>
        key.Length == Length ? new ImageKey(key.ToArray(), "") : throw new ArgumentException($"a key is {Length} bytes, not {key.Length}", nameof(key));

    /// <summary>Reads a key file: exactly <see cref="Length"/> bytes, readable and writable by its owner only.</summary>
    /// <exception cref="ImageStoreException">It cannot be read, is not a key's size, or others may read or write it.</exception>
    public static ImageKey Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = System.IO.Path.GetFullPath(path);
        try
        {
            if (!File.Exists(full))
                throw new ImageStoreException($"the key file {full} does not exist (amber key new {path} makes one)");
            var mode = File.GetUnixFileMode(full);
            if ((mode & Others) != 0)
                throw new ImageStoreException($"the key file {full} may be read or written by others (mode {Convert.ToString((int)mode, 8)}): chmod 600 it");
            var key = File.ReadAllBytes(full);
            if (key.Length != Length)
                throw new ImageStoreException($"the key file {full} holds {key.Length} bytes; a key is exactly {Length} random bytes (amber key new FILE makes one)");
            return new ImageKey(key, full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageStoreException($"cannot read the key file {full}: {ImageErrors.OneLine(e.Message)}", e);
        }
    }

    /// <summary>Makes a new key file of <see cref="Length"/> random bytes, mode 0600; refuses to replace a file.</summary>
    /// <exception cref="ImageStoreException">The file exists or cannot be written.</exception>
    public static ImageKey Create(string path) => Write(path, RandomNumberGenerator.GetBytes(Length));

    private static ImageKey Write(string path, byte[] key)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = System.IO.Path.GetFullPath(path);
        try
        {
            using var file = new FileStream(full, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            file.Write(key);
            file.Flush(flushToDisk: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageStoreException(File.Exists(full) ? $"{full} exists already; a key file is never replaced" : $"cannot write the key file {full}: {ImageErrors.OneLine(e.Message)}", e);
        }
        return new ImageKey(key, full);
    }

    /// <summary>The key named in a message: its id, and its file where it has one.</summary>
    public override string ToString() => Path.Length > 0 ? $"{Id} ({Path})" : Id;
}
