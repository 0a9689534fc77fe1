using System.Security.Cryptography;

namespace Amber.Image;

/// <summary>
/// AES-256-GCM of one block (a metadata file's payload, a block of page data): a fresh random
/// 96-bit nonce for every block, a 128-bit tag that finds any change and any other key. Random
/// nonces are safe for the 2^32 blocks per key that NIST allows (16 PiB of 4 MiB blocks).
/// </summary>
internal static class BlockCipher
{
    internal const int NonceLength = 12;
    internal const int TagLength = 16;

    /// <summary>Encrypts <paramref name="plain"/> into <paramref name="cipher"/> (the same length); fills the fresh nonce and the tag.</summary>
    internal static void Seal(ImageKey key, ReadOnlySpan<byte> plain, Span<byte> cipher, Span<byte> nonce, Span<byte> tag, ReadOnlySpan<byte> associated = default)
    {
        RandomNumberGenerator.Fill(nonce[..NonceLength]);
        using var aes = new AesGcm(key.Bytes, TagLength);
        aes.Encrypt(nonce[..NonceLength], plain, cipher, tag[..TagLength], associated);
    }

    /// <summary>Decrypts <paramref name="cipher"/> into <paramref name="plain"/>; false if the tag does not match (damaged, or another key).</summary>
    internal static bool TryOpen(ImageKey key, ReadOnlySpan<byte> cipher, Span<byte> plain, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> tag, ReadOnlySpan<byte> associated = default)
    {
        if (nonce.Length != NonceLength || tag.Length != TagLength)
            return false;
        using var aes = new AesGcm(key.Bytes, TagLength);
        try
        {
            aes.Decrypt(nonce, cipher, tag, plain, associated);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
    }
}
