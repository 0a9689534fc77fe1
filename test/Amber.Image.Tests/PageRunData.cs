namespace Amber.Image.Tests;

/// <summary>One append to a page file, as the writer reported it, with the data appended.</summary>
internal sealed record PageRunData(ulong Address, ulong Offset, ulong[] PageXxh3, byte[] Data);
