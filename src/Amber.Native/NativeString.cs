using System.Text;

namespace Amber.Native;

/// <summary>
/// NUL-terminated UTF-8 for paths passed to libc: runtime marshalling is disabled, so the bindings
/// take <c>byte*</c>, not <c>string</c>.
/// </summary>
internal static class NativeString
{
    public static byte[] Utf8Z(string value)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(value) + 1];
        Encoding.UTF8.GetBytes(value, bytes);
        return bytes;
    }
}
